package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpExecute connects to QEMU's QMP socket, negotiates capabilities and runs one command without
// arguments (system_powerdown, quit).
func qmpExecute(ctx context.Context, socket, command string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("cannot connect to QMP at %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	r := bufio.NewReader(c)
	if _, err := qmpRead(r); err != nil { // greeting
		return fmt.Errorf("QMP greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if err := json.NewEncoder(c).Encode(map[string]string{"execute": cmd}); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		for {
			msg, err := qmpRead(r)
			if err != nil {
				if cmd == "quit" {
					return nil // QEMU may close before replying
				}
				return fmt.Errorf("QMP %s: %w", cmd, err)
			}
			if msg.Event != "" {
				continue
			}
			if msg.Error != nil {
				return fmt.Errorf("QMP %s: %s", cmd, msg.Error.Desc)
			}
			break
		}
	}
	return nil
}

type qmpMessage struct {
	Event string `json:"event"`
	Error *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Return json.RawMessage `json:"return"`
	QMP    json.RawMessage `json:"QMP"`
}

func qmpRead(r *bufio.Reader) (*qmpMessage, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("bad QMP message %q: %w", line, err)
	}
	return &m, nil
}
