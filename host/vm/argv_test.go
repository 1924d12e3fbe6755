package vm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luksmount/luksmount/host/qemu"
)

// The host timeline (the session log) carries QEMU's whole command line, quoted for a shell.
func TestLogsQuotedCommandLine(t *testing.T) {
	s := spec(t, "agent")
	var mu sync.Mutex
	var lines []string
	s.Logf = func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	v, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.Shutdown(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := "qemu command line: " + qemu.Quote(append([]string{s.QEMU}, v.Args()...))
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		if l == want {
			if !strings.Contains(l, " /nonexistent/vmlinuz ") || !strings.Contains(l, "'console=ttyS0 panic=-1") {
				t.Errorf("command line lacks the kernel or its quoted command line: %s", l)
			}
			return
		}
	}
	t.Errorf("no %q among the host log lines:\n%s", want, strings.Join(lines, "\n"))
}
