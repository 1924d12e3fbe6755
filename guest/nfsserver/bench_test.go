//go:build linux

package nfsserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/luksmount/luksmount/guest/nfshandle"
	nfshelper "github.com/willscott/go-nfs/helpers"
	"golang.org/x/sys/unix"
)

// benchFiles is how many files (ours) or cached handles (stock) the
// resolve benchmarks use; LUKSMOUNT_BENCH_FILES=1000000 for the big run.
func benchFiles() []int {
	if v, err := strconv.Atoi(os.Getenv("LUKSMOUNT_BENCH_FILES")); err == nil {
		return []int{1000, v}
	}
	return []int{1000, 100_000}
}

// BenchmarkResolve measures handle -> path resolution with N files on the
// filesystem: ours is independent of N.
func BenchmarkResolve(b *testing.B) {
	for _, n := range benchFiles() {
		b.Run(fmt.Sprintf("ours-%d", n), func(b *testing.B) {
			root := b.TempDir()
			dfd, _ := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			for i := 0; i < n; i++ {
				fd, _ := unix.Openat(dfd, "f"+strconv.Itoa(i), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				unix.Close(fd)
			}
			t, err := nfshandle.Open(root)
			if err != nil {
				b.Fatal(err)
			}
			defer t.Close()
			h, err := t.At(dfd, "f"+strconv.Itoa(n/2))
			unix.Close(dfd)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := t.Path(h); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("stock-%d", n), func(b *testing.B) {
			root := b.TempDir()
			fs := osfs.New(root)
			ch := nfshelper.NewCachingHandler(nfshelper.NewNullAuthHandler(fs), n+10)
			var h []byte
			for i := 0; i < n; i++ {
				h = ch.ToHandle(fs, []string{filepath.Join("d", strconv.Itoa(i))})
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := ch.FromHandle(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
