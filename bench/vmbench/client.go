package vmbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/luksmount/luksmount/bench/guestspec"
	"github.com/luksmount/luksmount/bench/workload"
	"github.com/luksmount/luksmount/test/clientvm"
)

// Lines is what a guest reported.
type Lines []guestspec.Line

// Results are the workload results among the lines.
func (ls Lines) Results() []workload.Result {
	var out []workload.Result
	for _, l := range ls {
		if l.Kind == "result" && l.Result != nil {
			out = append(out, *l.Result)
		}
	}
	return out
}

// Step returns the duration of the named step (0 if absent).
func (ls Lines) Step(name string) float64 {
	for _, l := range ls {
		if l.Kind == "step" && l.Step == name {
			return l.Seconds
		}
	}
	return 0
}

// Err is the guest's error line, or an error if it never said done.
func (ls Lines) Err() error {
	for _, l := range ls {
		switch l.Kind {
		case "error":
			return fmt.Errorf("guest: %s", l.Error)
		case "done":
			return nil
		}
	}
	return fmt.Errorf("guest stopped without reporting done")
}

func readLines(path string) Lines {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out Lines
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l guestspec.Line
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Kind != "" {
			out = append(out, l)
		}
	}
	return out
}

// ClientRun boots the NFS client VM against server (as the client VM reaches it: 10.0.2.2 is
// the host's 127.0.0.1) and returns what it reported.
func ClientRun(ctx context.Context, im Images, dir, export string, nfsPort, mountPort int, w workload.Config, timeout time.Duration) (Lines, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := guestspec.Config{
		Mode: guestspec.ModeClient, Server: clientvm.HostAlias, NFSPort: nfsPort, MountPort: mountPort,
		Export: export, MountOptions: "rsize=1048576,wsize=1048576", Workload: w,
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, guestspec.ResultsPort+".out")
	os.Remove(out)
	_, runErr := clientvm.Run(ctx, clientvm.Config{
		Arch: "amd64", Kernel: im.Kernel, Image: im.Client, Dir: dir,
		Spec:    clientvm.Spec{Port: nfsPort, Export: export},
		Files:   map[string][]byte{guestspec.ConfigPath: js},
		Ports:   []string{guestspec.ResultsPort},
		Memory:  768,
		Timeout: timeout,
	})
	lines := readLines(out)
	if runErr != nil {
		return lines, fmt.Errorf("client VM: %w", runErr)
	}
	if err := lines.Err(); err != nil {
		return lines, fmt.Errorf("client VM: %w (console: %s)", err, filepath.Join(dir, "client-console.log"))
	}
	return lines, nil
}
