package cryptsetup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/tcryptfix"
)

// testPassphrase runs the real tool with --test-passphrase added (the header is read and the
// key checked, nothing is activated) and keeps what /proc showed of each process.
type testPassphrase struct {
	exec  *command.Exec
	procs [][]byte // cmdline and environ of each process, read while it waited for stdin
}

func (r *testPassphrase) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	c.Args = append(c.Args, "--test-passphrase")
	return r.exec.Run(ctx, c)
}

// Debian 12's cryptsetup (2.6.1, the guest's; a host package of build.sh) opens a hidden VeraCrypt
// volume with a PIM and a keyfile from exactly the stdin TcryptStdin builds, with the PIM in no
// process's argv or environment; a wrong PIM is refused. (Without AF_ALG on the host the wrong
// PIM's message differs from the guest's: the VM tier, test/storage TestStackVeraCrypt, checks it.)
func TestRealCryptsetupTakesThePIMOnStdin(t *testing.T) {
	const pass, pim = "hidden pass", "37"
	dir := t.TempDir()
	kf := []byte("keyfile\nbytes\x00with a newline")
	img := filepath.Join(dir, "vc.img")
	if err := tcryptfix.Write(img, tcryptfix.Spec{Size: 1 << 20, Outer: tcryptfix.Header{Password: []byte("outer"), PIM: 1},
		Hidden: tcryptfix.Header{Password: []byte(pass), PIM: 37, Keyfiles: [][]byte{kf}}, HiddenPlain: make([]byte, 64<<10)}); err != nil {
		t.Fatal(err)
	}
	r := &testPassphrase{}
	r.exec = &command.Exec{Started: func(pid int) {
		// Start returns once execve has begun: the new argv may take a moment to show (the
		// process then waits for stdin, which is written after Started returns).
		for _, f := range []string{"cmdline", "environ"} {
			var b []byte
			var err error
			for end := time.Now().Add(5 * time.Second); len(b) == 0 && time.Now().Before(end); time.Sleep(time.Millisecond) {
				b, err = os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			}
			if err != nil {
				t.Errorf("cannot read /proc/%d/%s: %v", pid, f, err)
			}
			r.procs = append(r.procs, b)
		}
	}}
	tool := &Tool{Run: r}
	c := control.Crypt{Type: "tcrypt", SecretPIM: true, Hidden: true, KeyFileSize: len(kf)}
	secret := func(pim string) []byte { return append([]byte(pim+"\n"+pass+"\n"), kf...) }
	if err := tool.OpenOther(context.Background(), img, c, OpenOptions{}, secret(pim)); err != nil {
		t.Fatalf("the right password, PIM and keyfile: %v", err)
	}
	if len(r.procs) != 2 || !bytes.Contains(r.procs[0], []byte("cryptsetup")) {
		t.Fatalf("did not see cryptsetup's /proc entries: %q", r.procs)
	}
	for _, b := range r.procs {
		for _, a := range bytes.Split(b, []byte{0}) {
			if string(a) == pim || bytes.Contains(a, []byte("pim="+pim)) || bytes.Contains(a, []byte(pass)) {
				t.Errorf("a secret is in cryptsetup's argv or environment: %q", a)
			}
		}
	}
	if !strings.Contains(string(r.procs[0]), "--veracrypt-query-pim") {
		t.Errorf("cryptsetup was not told to read the PIM: %q", r.procs[0])
	}
	if err := tool.OpenOther(context.Background(), img, c, OpenOptions{}, secret("38")); err == nil {
		t.Error("a wrong PIM opened the volume")
	}
}
