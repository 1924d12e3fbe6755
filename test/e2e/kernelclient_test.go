//go:build vmtest

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/test/clientvm"
)

// clientImage is the nfsclient variant with luksmount-clientinit as /init (built by build.sh test-vm).
func clientImage(t testing.TB, arch string) (kernel, image string) {
	dir := filepath.Join(repoRoot(t), "build", arch)
	kernel, image = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initramfs-nfsclient.cpio.lz4")
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("client image missing: %v (run `./build.sh test-vm`, which builds it)", err)
	}
	return kernel, image
}

// serving boots an agent on a fresh LUKS2 disk and serves it: the state most tests start from.
func serving(t testing.TB, size int64, serve control.ServeRequest, opts ...bootOpts) (*guest, string, *control.ServeReply) {
	t.Helper()
	disk := newDisk(t, size)
	var o bootOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	g := boot(t, disk, o)
	ctx, cancel := g.ctx()
	defer cancel()
	c := g.Control()
	if _, err := c.Format(ctx, fastKDF, []byte(testPassphrase)); err != nil {
		t.Fatalf("format: %v", err)
	}
	if _, err := c.Unlock(ctx, control.UnlockRequest{}, []byte(testPassphrase)); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if _, err := c.Mount(ctx, control.MountRequest{}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	s, err := c.Serve(ctx, serve)
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	return g, disk, s
}

func port(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func runClient(t testing.TB, spec clientvm.Spec, cfg clientvm.Config) *clientvm.Report {
	t.Helper()
	kernel, image := clientImage(t, "amd64")
	cfg.Arch, cfg.Kernel, cfg.Image, cfg.Spec = "amd64", kernel, image, spec
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	rep, err := clientvm.Run(t.Context(), cfg)
	if err != nil {
		if rep != nil {
			t.Logf("client console:\n%s", rep.Console)
		}
		t.Fatalf("client VM: %v", err)
	}
	if errs := rep.Errors(); len(errs) > 0 {
		t.Logf("client console:\n%s", rep.Console)
		t.Fatalf("client VM reported: %s", strings.Join(errs, "; "))
	}
	return rep
}

// manyFiles is the many-files count of the kernel-client workload; `make soak` sets 10000.
var manyFiles = envInt("LUKSMOUNT_MANY_FILES", 4000)

// TestKernelClientWorkload runs the whole checked workload over the Linux kernel's NFSv3 client
// (its caching, read-ahead and write-behind), mounted through the host's 127.0.0.1 forward.
func TestKernelClientWorkload(t *testing.T) {
	// 10k files under TCG take 10+ minutes (every create is a journal commit on dm-crypt): make
	// test lists 4000 (40 READDIRPLUS pages and more), `make soak` the full 10k.
	g, _, s := serving(t, 512<<20, control.ServeRequest{}, bootOpts{lifetime: 45 * time.Minute})
	start := time.Now()
	rep := runClient(t, clientvm.Spec{
		Port: port(t, g.NFSAddr()), Export: s.Export,
		MountOptions: "rsize=1048576,wsize=1048576",
		Run:          ".", FSXSeconds: 120, Seed: 1, Files: manyFiles,
	}, clientvm.Config{Timeout: 40 * time.Minute, Memory: 768})
	rep.LogResults(t.Logf)
	t.Logf("client VM ran %d scenarios in %s", len(rep.Results), time.Since(start).Round(time.Second))
	if !rep.Done || rep.Failed > 0 || rep.Passed == 0 {
		t.Logf("client console:\n%s", rep.Console)
		t.Fatalf("workload over the kernel NFS client: %d passed, %d failed, finished=%v", rep.Passed, rep.Failed, rep.Done)
	}
	g.shutdown(t)
}
