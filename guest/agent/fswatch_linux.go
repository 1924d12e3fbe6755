package agent

import (
	"context"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// LinuxFaultSource reads /dev/kmsg from its end (older messages were the boot) and statfs.
func LinuxFaultSource(ctx context.Context) FaultSource {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		f, err := os.Open("/dev/kmsg")
		if err != nil {
			return
		}
		defer f.Close()
		f.Seek(0, io.SeekEnd)
		buf := make([]byte, 8192)
		for ctx.Err() == nil {
			n, err := f.Read(buf) // one record per read: "prio,seq,usec,flags;text\n continuation"
			if errors.Is(err, unix.EPIPE) {
				continue // records were overwritten before we read them
			}
			if err != nil {
				return
			}
			if msg := kmsgText(string(buf[:n])); msg != "" {
				select {
				case ch <- msg:
				default: // the watcher is behind: it is rate-limited anyway
				}
			}
		}
	}()
	return FaultSource{Kernel: ch, Space: statfsSpace}
}

func statfsSpace(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
