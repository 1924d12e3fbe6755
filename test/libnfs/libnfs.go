// Package libnfs drives Debian's libnfs-utils (nfs-ls, nfs-cat, nfs-cp): a real NFSv3 client we did
// not write, used by the end-to-end tests against the address `luksmount status --json` reports.
package libnfs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Client reaches one export.
type Client struct {
	Addr   string // host:port serving both MOUNT and NFS (no portmapper)
	Export string // MOUNT path, usually "/"
	UID    int    // AUTH_SYS uid and gid sent with each call
	GID    int
}

// URL builds a libnfs URL for path inside the export. libnfs takes the ports as URL arguments, so
// no portmapper is needed.
func (c Client) URL(path string) (string, error) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "", fmt.Errorf("bad NFS address %q: %w", c.Addr, err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("bad NFS port in %q", c.Addr)
	}
	// libnfs mounts everything before the last '/' as the export, so the export "/" needs "//file";
	// and it does not percent-decode, so the path goes in raw (test names never hold '?').
	export := strings.TrimSuffix(c.Export, "/")
	if export == "" {
		export = "/"
	}
	p := export + "/" + strings.TrimPrefix(path, "/")
	if strings.ContainsAny(p, "?#") {
		return "", fmt.Errorf("libnfs URLs cannot carry %q", path)
	}
	q := url.Values{}
	q.Set("version", "3")
	q.Set("nfsport", port)
	q.Set("mountport", port)
	q.Set("uid", strconv.Itoa(c.UID))
	q.Set("gid", strconv.Itoa(c.GID))
	return "nfs://" + host + p + "?" + q.Encode(), nil
}

func (c Client) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Ls lists a directory's names (without . and ..).
func (c Client) Ls(ctx context.Context, dir string) ([]string, error) {
	u, err := c.URL(dir)
	if err != nil {
		return nil, err
	}
	out, err := c.run(ctx, nil, "nfs-ls", u)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		// nfs-ls prints "mode nlink uid gid size name"; the name is the rest of the line.
		name := f[len(f)-1]
		if len(f) >= 6 {
			idx := nthFieldIndex(line, 5)
			name = line[idx:]
		}
		if name == "." || name == ".." {
			continue
		}
		names = append(names, name)
	}
	return names, nil
}

// nthFieldIndex returns the byte offset where whitespace-separated field n (0-based) starts.
func nthFieldIndex(s string, n int) int {
	i, field := 0, -1
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		field++
		if field == n {
			return i
		}
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			i++
		}
	}
	return len(s)
}

// Cat reads a file.
func (c Client) Cat(ctx context.Context, path string) ([]byte, error) {
	u, err := c.URL(path)
	if err != nil {
		return nil, err
	}
	return c.run(ctx, nil, "nfs-cat", u)
}

// Put writes data to path (created or truncated) through nfs-cp.
func (c Client) Put(ctx context.Context, path string, data []byte) error {
	u, err := c.URL(path)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "libnfs-put-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = c.run(ctx, nil, "nfs-cp", f.Name(), u)
	return err
}
