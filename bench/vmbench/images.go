// Package vmbench runs the benchmark's VM configurations on one LUKS2 + ext4 disk image:
// ours (the agent image through host/vm and gvproxy, as the product runs it), kernel nfsd (a
// bench-only nfsd image variant exporting the same disk) and local (the workload inside that
// guest on the mount), each driven by a kernel NFS client VM running bench/workload.
package vmbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Images are the files the benchmark boots.
type Images struct {
	Kernel string // vmlinuz (all variants share the cloud kernel)
	Agent  string // the product's image (make images)
	Client string // nfsclient variant with luksmount-benchinit
	NFSD   string // nfsd variant with luksmount-nfsdinit
}

// Sizes returns each image's size in bytes, by name.
func (im Images) Sizes() map[string]int64 {
	out := map[string]int64{}
	for name, p := range map[string]string{"vmlinuz": im.Kernel, "agent initramfs": im.Agent,
		"bench client initramfs": im.Client, "bench nfsd initramfs": im.NFSD} {
		if st, err := os.Stat(p); err == nil {
			out[name] = st.Size()
		}
	}
	return out
}

// BuildImages builds the two bench inits and their images into out (the agent image and the
// kernel come from `make images` under root/build/ARCH).
func BuildImages(ctx context.Context, root, out, arch string, logf func(string, ...any)) (Images, error) {
	im := Images{
		Kernel: filepath.Join(root, "build", arch, "vmlinuz"),
		Agent:  filepath.Join(root, "build", arch, "initramfs.cpio.lz4"),
	}
	for _, p := range []string{im.Kernel, im.Agent} {
		if _, err := os.Stat(p); err != nil {
			return im, fmt.Errorf("guest image missing: %w (run `make images`)", err)
		}
	}
	bin := filepath.Join(out, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return im, err
	}
	gobuild := func(env []string, dst, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", dst, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(string(o)))
		}
		return nil
	}
	guest := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch}
	mkimage := filepath.Join(bin, "luksmount-mkimage")
	if err := gobuild([]string{"CGO_ENABLED=0"}, mkimage, "./cmd/luksmount-mkimage"); err != nil {
		return im, err
	}
	for _, v := range []struct{ variant, init, pkg string }{
		{"nfsclient", "luksmount-benchinit", "./bench/cmd/luksmount-benchinit"},
		{"nfsd", "luksmount-nfsdinit", "./bench/cmd/luksmount-nfsdinit"},
	} {
		initBin := filepath.Join(bin, v.init+"-"+arch)
		if err := gobuild(guest, initBin, v.pkg); err != nil {
			return im, err
		}
		dir := filepath.Join(out, v.variant)
		cmd := exec.CommandContext(ctx, mkimage, "build", "-arch", arch, "-variant", v.variant, "-init", initBin, "-out", dir)
		cmd.Dir = root
		o, err := cmd.CombinedOutput()
		if err != nil {
			return im, fmt.Errorf("luksmount-mkimage build %s: %w: %s", v.variant, err, strings.TrimSpace(string(o)))
		}
		logf("built %s", strings.TrimSpace(lastLine(string(o))))
	}
	im.Client = filepath.Join(out, "nfsclient", "initramfs-nfsclient.cpio.lz4")
	im.NFSD = filepath.Join(out, "nfsd", "initramfs-nfsd.cpio.lz4")
	return im, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
