package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClosed reports a call on a connection that has gone away (the VM stopped or crashed).
var ErrClosed = errors.New("control: connection to the agent closed")

// Client is the host side of a control connection. Calls may run concurrently.
type Client struct {
	rw      io.ReadWriteCloser
	onEvent func(Event)

	wmu sync.Mutex // one frame at a time on the wire

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]chan *Frame
	err     error
	done    chan struct{}
}

// NewClient starts reading rw. onEvent (may be nil) receives the agent's events in order, from the
// read goroutine: it must not block for long.
func NewClient(rw io.ReadWriteCloser, onEvent func(Event)) *Client {
	c := &Client{rw: rw, onEvent: onEvent, pending: map[uint32]chan *Frame{}, done: make(chan struct{})}
	go c.readLoop()
	return c
}

func (c *Client) readLoop() {
	var err error
	for {
		var f *Frame
		f, err = ReadFrame(c.rw)
		if err != nil {
			break
		}
		switch f.Kind {
		case KindEvent:
			var ev Event
			if json.Unmarshal(f.Body, &ev) == nil && c.onEvent != nil {
				c.onEvent(ev)
			}
		case KindResponse:
			c.mu.Lock()
			ch := c.pending[f.ID]
			delete(c.pending, f.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.mu.Lock()
	c.err = err
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
}

// Done is closed when the connection is lost.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err reports why the connection was lost (nil while it is up).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection.
func (c *Client) Close() error { return c.rw.Close() }

// Call sends op with args (and an optional secret, which the caller still owns and must wipe) and
// decodes the reply into result (may be nil). Agent errors come back as *Error.
func (c *Client) Call(ctx context.Context, op Op, args any, secret []byte, result any) error {
	body, err := json.Marshal(request{Op: op, Args: args})
	if err != nil {
		return fmt.Errorf("control: cannot encode %s request: %w", op, err)
	}
	ch := make(chan *Frame, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	err = WriteFrame(c.rw, KindRequest, id, body, secret)
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("control: cannot send %s request: %w", op, err)
	}
	select {
	case f := <-ch:
		defer f.Wipe()
		var resp struct {
			Error  *Error          `json:"error"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(f.Body, &resp); err != nil {
			return fmt.Errorf("control: bad %s reply: %w", op, err)
		}
		if resp.Error != nil {
			return resp.Error
		}
		if result != nil && len(resp.Result) > 0 {
			if err := json.Unmarshal(resp.Result, result); err != nil {
				return fmt.Errorf("control: bad %s result: %w", op, err)
			}
		}
		return nil
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	}
}

func (c *Client) forget(id uint32) {
	c.mu.Lock()
	if c.pending != nil {
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// Hello opens the session and checks the protocol version.
func (c *Client) Hello(ctx context.Context, hostVersion string) (*HelloReply, error) {
	var r HelloReply
	err := c.Call(ctx, OpHello, HelloRequest{HostVersion: hostVersion, ProtocolVersion: ProtocolVersion}, nil, &r)
	if err != nil {
		return nil, err
	}
	if r.ProtocolVersion != ProtocolVersion {
		return nil, fmt.Errorf("%w: agent %s speaks protocol %d, this luksmount speaks %d; rebuild the guest images with `make images`",
			ErrVersion, r.AgentVersion, r.ProtocolVersion, ProtocolVersion)
	}
	return &r, nil
}

// Probe lists the guest's disks.
func (c *Client) Probe(ctx context.Context) (*ProbeReply, error) {
	var r ProbeReply
	return &r, c.Call(ctx, OpProbe, ProbeRequest{}, nil, &r)
}

// Unlock opens a LUKS device with secret (passphrase or key file content; the caller wipes it).
func (c *Client) Unlock(ctx context.Context, req UnlockRequest, secret []byte) (*UnlockReply, error) {
	var r UnlockReply
	return &r, c.Call(ctx, OpUnlock, req, secret, &r)
}

// Mount mounts the filesystem.
func (c *Client) Mount(ctx context.Context, req MountRequest) (*MountReply, error) {
	var r MountReply
	return &r, c.Call(ctx, OpMount, req, nil, &r)
}

// Check runs e2fsck -n.
func (c *Client) Check(ctx context.Context, req CheckRequest) (*CheckReply, error) {
	var r CheckReply
	return &r, c.Call(ctx, OpCheck, req, nil, &r)
}

// Serve starts the NFS server.
func (c *Client) Serve(ctx context.Context, req ServeRequest) (*ServeReply, error) {
	var r ServeReply
	return &r, c.Call(ctx, OpServe, req, nil, &r)
}

// Status returns the agent's state.
func (c *Client) Status(ctx context.Context) (*StatusReply, error) {
	var r StatusReply
	return &r, c.Call(ctx, OpStatus, StatusRequest{}, nil, &r)
}

// Shutdown closes everything and (unless req.NoPowerOff) powers the VM off after replying.
func (c *Client) Shutdown(ctx context.Context, req ShutdownRequest) (*ShutdownReply, error) {
	var r ShutdownReply
	return &r, c.Call(ctx, OpShutdown, req, nil, &r)
}

// Format creates a LUKS container and/or filesystem; secret is the new passphrase.
func (c *Client) Format(ctx context.Context, req FormatRequest, secret []byte) (*FormatReply, error) {
	var r FormatReply
	return &r, c.Call(ctx, OpFormat, req, secret, &r)
}
