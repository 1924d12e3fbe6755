package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"net"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/session"
	"github.com/luksmount/luksmount/host/vm"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "luksheader", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeImage writes size bytes: head, then a pattern that is no signature.
func writeImage(t *testing.T, path string, head []byte, size int) {
	t.Helper()
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	copy(b, head)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// headerEnv is a session on a data image (no signature) with a detached header file; the fake
// agent records every unlock request and the boot its spec.
type headerEnv struct {
	*env
	data, header string
	mu           sync.Mutex
	unlocks      []control.UnlockRequest
	boots        []BootSpec
}

func newHeaderEnv(t *testing.T, headerFixture string) *headerEnv {
	e := &headerEnv{env: newEnv(t, "luks2-argon2id.bin", "right")}
	dir := filepath.Dir(e.opts.Target)
	e.data, e.header = filepath.Join(dir, "data.img"), filepath.Join(dir, "hdr.img")
	writeImage(t, e.data, nil, 4<<20)
	if headerFixture != "" {
		writeImage(t, e.header, fixture(t, headerFixture), 16<<20)
	}
	e.opts.Target, e.opts.Header = e.data, e.header
	boot := e.deps.Boot
	e.deps.Boot = func(ctx context.Context, spec BootSpec) (Machine, error) {
		e.mu.Lock()
		e.boots = append(e.boots, spec)
		e.mu.Unlock()
		return boot(ctx, spec)
	}
	inner := &control.Server{Handler: func(ctx context.Context, r *control.Request) (any, error) {
		if r.Op == control.OpUnlock {
			var u control.UnlockRequest
			r.Decode(&u)
			e.mu.Lock()
			e.unlocks = append(e.unlocks, u)
			e.mu.Unlock()
		}
		return e.vm.handle(ctx, r)
	}}
	// Re-plumb the fake VM's client through the recording handler.
	a, b := netPipe()
	go inner.ServeConn(context.Background(), a)
	e.vm.client = control.NewClient(b, nil)
	return e
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestDetachedHeaderSession(t *testing.T) {
	for _, fx := range []string{"luks2-detached.bin", "luks1-detached.bin"} {
		t.Run(fx, func(t *testing.T) {
			e := newHeaderEnv(t, fx)
			before, beforeData := sum(t, e.header), sum(t, e.data)
			ui := &scriptUI{answers: []string{"wrong", "right"}}
			res, done := e.start(t, ui)
			if res == nil {
				t.Fatalf("failed: %v", <-done)
			}
			// Sized from the header file's key slots (argon2id 32 MiB: the 256 MiB floor).
			if !res.State.Encrypted || res.State.Target != e.data || res.State.MemoryMiB != 256 {
				t.Fatalf("state %+v", res.State)
			}
			RequestStop(sessionSocket(e.env, res), false)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(e.unlocks) != 2 || !e.unlocks[0].Header || !e.unlocks[1].Header {
				t.Fatalf("unlock requests %+v: want two, both with Header", e.unlocks)
			}
			if len(e.boots) != 1 || e.boots[0].Header == nil || !e.boots[0].Header.ReadOnly || e.boots[0].Header.Path != e.header {
				t.Fatalf("boot spec header %+v", e.boots)
			}
			if e.boots[0].Header.File != nil {
				t.Fatal("the header file is still open after the session")
			}
			if sum(t, e.header) != before || sum(t, e.data) != beforeData {
				t.Fatal("the header or the data changed")
			}
			if log := e.log(t); !strings.Contains(log, "detached header "+e.header) {
				t.Fatalf("log does not name the header:\n%s", log)
			}
			ui.allWiped(t)
			e.noSessions(t)
		})
	}
}

func TestDetachedHeaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *headerEnv)
		is    error
		want  string
	}{
		{"missing", func(t *testing.T, e *headerEnv) { os.Remove(e.header) }, fs.ErrNotExist, "the --header file " + "%H does not exist"},
		{"not LUKS", func(t *testing.T, e *headerEnv) { writeImage(t, e.header, nil, 1<<20) }, control.ErrNotEncrypted, "%H is not a LUKS header"},
		{"corrupt", func(t *testing.T, e *headerEnv) {
			b := fixture(t, "luks2-detached.bin")
			for i := 4096; i < 32768; i++ {
				b[i] ^= 0x5a
			}
			writeImage(t, e.header, b, 1<<20)
		}, luksheader.ErrCorrupt, "corrupt"},
		{"data too small", func(t *testing.T, e *headerEnv) {
			// A header backup of a normal drive: its data starts at 16 MiB, the data image is 4 MiB.
			writeImage(t, e.header, fixture(t, "luks2-argon2id.bin"), 16<<20)
		}, control.ErrUnsupportedFS, "puts the encrypted data at 16777216 bytes"},
		{"plain ext4 data", func(t *testing.T, e *headerEnv) { writeImage(t, e.data, fixture(t, "ext4.bin"), 4<<20) }, control.ErrUnsupportedFS, "holds an ext2/3/4 filesystem where the --header file"},
		{"other LUKS data", func(t *testing.T, e *headerEnv) { writeImage(t, e.data, fixture(t, "luks2-label.bin"), 4<<20) }, control.ErrUnsupportedFS, "holds a LUKS header where"},
		{"same file", func(t *testing.T, e *headerEnv) { e.opts.Target = e.header }, nil, "both as the --header file and as the drive"},
		{"several devices", func(t *testing.T, e *headerEnv) {
			other := filepath.Join(filepath.Dir(e.data), "b.img")
			writeImage(t, other, nil, 1<<20)
			e.opts.Target = e.data + MemberSeparator + other
		}, nil, "--header opens one LUKS drive"},
		{"veracrypt", func(t *testing.T, e *headerEnv) { e.opts.Crypt.Type = "tcrypt" }, nil, "--header is for LUKS drives"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newHeaderEnv(t, "luks2-detached.bin")
			tc.setup(t, e)
			data := sum(t, e.data)
			_, done := e.start(t, &scriptUI{answers: []string{"right"}})
			err := <-done
			want := strings.ReplaceAll(tc.want, "%H", e.header)
			if err == nil || !strings.Contains(err.Error(), want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err = %v; want %q (matching %v)", err, want, tc.is)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("not one line: %q", err)
			}
			if len(e.boots) != 0 {
				t.Fatal("a VM was booted for a header that cannot fit")
			}
			if sum(t, e.data) != data {
				t.Fatal("the data changed")
			}
			e.noSessions(t)
		})
	}
}

// A drive whose own header is intact takes --header only for the same volume (a header backup).
func TestDetachedHeaderAndOwnHeader(t *testing.T) {
	e := newHeaderEnv(t, "luks2-argon2id.bin")
	writeImage(t, e.data, fixture(t, "luks2-argon2id.bin"), 20<<20)
	ui := &scriptUI{answers: []string{"right"}}
	res, done := e.start(t, ui)
	if res == nil {
		t.Fatalf("a header backup of the drive's own volume: %v", <-done)
	}
	RequestStop(sessionSocket(e.env, res), false)
	<-done
	if !slices.ContainsFunc(ui.lines, func(l string) bool {
		return strings.Contains(l, "has its own LUKS header; opening it with the --header file")
	}) {
		t.Fatalf("no note about the drive's own header: %q", ui.lines)
	}

	e = newHeaderEnv(t, "luks2-label.bin") // another volume's header
	writeImage(t, e.data, fixture(t, "luks2-argon2id.bin"), 20<<20)
	_, done = e.start(t, &scriptUI{answers: []string{"right"}})
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "has a LUKS header of its own (UUID 22222222-2222-4222-8222-222222222222)") || !strings.Contains(err.Error(), "drop --header") {
		t.Fatalf("err = %v", err)
	}
}

// A detached header given as the target alone says to use --header.
func TestHeaderAloneAsTarget(t *testing.T) {
	for _, fx := range []string{"luks2-detached.bin", "luks1-detached.bin"} {
		e := newEnv(t, fx, "right")
		writeImage(t, e.opts.Target, fixture(t, fx), 1<<20)
		_, done := e.start(t, &scriptUI{answers: []string{"right"}})
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "holds only a detached LUKS header") || !strings.Contains(err.Error(), "luksmount --header "+e.opts.Target+" DRIVE") {
			t.Fatalf("%s: err = %v", fx, err)
		}
	}
}

func TestAddHeaderIsReadOnlyAndLast(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hdr.img")
	writeImage(t, p, fixture(t, "luks2-detached.bin"), 16<<20)
	e := newEnv(t, "luks2-argon2id.bin", "right")
	hdr, err := e.deps.Open(p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer hdr.Close()
	vs := vm.Spec{Config: qemu.Config{Disks: []qemu.Disk{{Path: "/data.img"}, {Path: "/member.img"}}}}
	addHeader(&vs, BootSpec{Header: hdr, Discard: true}, nil)
	d := vs.Config.Disks
	if len(d) != 3 || d[2].Path != p || !d[2].ReadOnly || d[2].Serial != control.HeaderSerial || d[2].Discard {
		t.Fatalf("disks %+v", d)
	}
	c := qemu.Config{Arch: qemu.ArchAMD64, Accel: qemu.AccelTCG, HostOS: "linux", MemoryMiB: 256, Kernel: "k", Initrd: "i", ConsoleLog: "c", ControlSocket: "s", Disks: d}
	args, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "node-name=disk2-file,filename="+p+",read-only=on") || !strings.Contains(joined, "serial="+control.HeaderSerial) {
		t.Fatalf("the header disk is not read-only with its serial: %s", joined)
	}
	if bytes.Contains([]byte(joined), []byte("node-name=disk2,file=disk2-file,read-only=off")) {
		t.Fatal("the header's format node is writable")
	}
}

func netPipe() (net.Conn, net.Conn) { return net.Pipe() }

func sessionSocket(e *env, res *Result) string {
	return session.SocketPath(e.reg.Dirs[0], res.State.ID)
}

func TestCheckWithDetachedHeader(t *testing.T) {
	e := newHeaderEnv(t, "luks2-detached.bin")
	_, _, unlocks := checkVM(e.env)
	var spec BootSpec
	boot := e.deps.Boot
	e.deps.Boot = func(ctx context.Context, s BootSpec) (Machine, error) { spec = s; return boot(ctx, s) }
	before := sum(t, e.header)
	ui := &checkUIFake{scriptUI: scriptUI{answers: []string{"right"}}}
	_, err := Check(context.Background(), CheckOptions{Target: e.data, Header: e.header, UID: -1, GID: -1}, e.deps, ui)
	if !errors.Is(err, control.ErrNeedsRepair) {
		t.Fatalf("err = %v (the fake finds problems)", err)
	}
	if len(*unlocks) != 1 || !(*unlocks)[0].Header || !(*unlocks)[0].ReadOnly {
		t.Fatalf("unlocks %+v", *unlocks)
	}
	if spec.Header == nil || spec.Header.Path != e.header || spec.Header.File != nil {
		t.Fatalf("boot spec header %+v (want the header, closed after the check)", spec.Header)
	}
	if sum(t, e.header) != before {
		t.Fatal("the header changed")
	}
	_, err = Check(context.Background(), CheckOptions{Target: e.data, Header: e.data + ".nope", UID: -1, GID: -1}, e.deps, ui)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing header: %v", err)
	}
}

func TestResizeRefusedWithDetachedHeader(t *testing.T) {
	s := &sup{dev: &blockdev.Device{Path: "/d.img", IsImage: true}, header: &blockdev.Device{Path: "/h.img"}}
	if _, err := s.resize(context.Background(), nil, 1<<30); err == nil || !strings.Contains(err.Error(), "opened with --header") {
		t.Fatalf("resize: %v", err)
	}
}

// The VM is sized from the header file's key slots, not from the data (which has none).
func TestDetachedHeaderSizesTheVM(t *testing.T) {
	e := newHeaderEnv(t, "luks2-twoslots.bin") // a header backup: 128 MiB argon2i slot, data at 16 MiB
	writeImage(t, e.data, nil, 20<<20)
	res, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if res == nil {
		t.Fatalf("failed: %v", <-done)
	}
	RequestStop(sessionSocket(e.env, res), false)
	<-done
	if want := qemu.MemoryForKDF(128); res.State.MemoryMiB != want || want <= 256 {
		t.Fatalf("VM memory %d MiB, want %d (from the header's 128 MiB slot)", res.State.MemoryMiB, want)
	}
}

// The data drive alone (the user forgot --header) is refused before booting, saying --header.
func TestDataWithoutHeaderMentionsHeader(t *testing.T) {
	e := newHeaderEnv(t, "luks2-detached.bin")
	e.opts.Header = ""
	_, done := e.start(t, &scriptUI{answers: []string{"right"}})
	if err := <-done; err == nil || !strings.Contains(err.Error(), "needs --header FILE") || len(e.boots) != 0 {
		t.Fatalf("err = %v, boots %d", err, len(e.boots))
	}
}
