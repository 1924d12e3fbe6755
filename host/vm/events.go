package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// QMPEvent is one asynchronous event from QEMU's QMP event monitor.
type QMPEvent struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"-"`
}

// BlockIOError is the data of QEMU's BLOCK_IO_ERROR event (qapi/block-core.json).
type BlockIOError struct {
	Device    string `json:"device"`    // the legacy drive id ("" with -blockdev)
	NodeName  string `json:"node-name"` // the node the device is attached to: disk0
	Operation string `json:"operation"` // read or write
	Action    string `json:"action"`    // report, ignore, stop
	NoSpace   bool   `json:"nospace"`   // the host ran out of space (ENOSPC)
	Reason    string `json:"reason"`    // strerror text: "Input/output error"
}

// IOError decodes a BLOCK_IO_ERROR event.
func (e QMPEvent) IOError() (BlockIOError, bool) {
	var b BlockIOError
	if e.Name != "BLOCK_IO_ERROR" || json.Unmarshal(e.Data, &b) != nil {
		return b, false
	}
	return b, true
}

// String is one line for the session log.
func (b BlockIOError) String() string {
	node := b.NodeName
	if node == "" {
		node = b.Device
	}
	what := b.Reason
	if b.NoSpace {
		what = "no space left on the host"
	}
	return fmt.Sprintf("QEMU BLOCK_IO_ERROR: %s error on %s: %s (action %s)", b.Operation, node, what, b.Action)
}

// watchEvents keeps a connection to QEMU's event monitor and hands every event to fn until the
// monitor closes (QEMU exited) or ctx ends. QEMU opens the monitor socket before it runs the
// guest, so one connection made after start sees every event of the guest's life.
func watchEvents(ctx context.Context, socket string, fn func(QMPEvent), logf func(string, ...any)) {
	var d net.Dialer
	var c net.Conn
	var err error
	for i := 0; i < 50; i++ { // the socket appears moments after QEMU starts
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err = d.DialContext(dctx, "unix", socket)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		if ctx.Err() == nil {
			logf("WARN: no QMP event monitor (%v): drive errors are seen only by the guest", err)
		}
		return
	}
	defer c.Close()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := qmpRead(r); err != nil { // greeting
		logf("WARN: QMP event monitor: %v", err)
		return
	}
	if err := json.NewEncoder(c).Encode(map[string]string{"execute": "qmp_capabilities"}); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var ev QMPEvent
		if json.Unmarshal(line, &ev) != nil || ev.Name == "" {
			continue // the capabilities reply
		}
		ev.Time = time.Now()
		fn(ev)
	}
}
