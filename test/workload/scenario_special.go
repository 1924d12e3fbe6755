//go:build linux || darwin

package workload

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// runSpecialFiles creates what a backup of a Linux system holds besides files, directories and
// links (a FIFO, block and character devices, a bound unix socket), checks each is listed and
// stat'ed with its type, mode, owner and device numbers, then removes them.
func runSpecialFiles(e *env) error {
	if uid := os.Geteuid(); uid != 0 {
		return e.skip("mknod of devices needs root; running as uid %d", uid)
	}
	type special struct {
		name         string
		ifmt         uint32
		dirType      fs.FileMode
		major, minor uint32
		mode         uint32
	}
	items := []special{
		{"fifo", unix.S_IFIFO, fs.ModeNamedPipe, 0, 0, 0o640},
		{"sda1", unix.S_IFBLK, fs.ModeDevice, 8, 1, 0o660},
		{"tty5", unix.S_IFCHR, fs.ModeDevice | fs.ModeCharDevice, 4, 5, 0o620},
		{"sock", unix.S_IFSOCK, fs.ModeSocket, 0, 0, 0o755},
	}
	for _, it := range items {
		p := e.path(it.name)
		var err error
		switch it.ifmt {
		case unix.S_IFIFO:
			err = unix.Mkfifo(p, it.mode)
		case unix.S_IFSOCK:
			err = bindUnixSocket(p)
		default:
			err = unix.Mknod(p, it.ifmt|it.mode, int(unix.Mkdev(it.major, it.minor)))
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", it.name, err)
		}
		if err := os.Chmod(p, os.FileMode(it.mode)); err != nil {
			return fmt.Errorf("chmod %s: %w", it.name, err)
		}
		if err := os.Lchown(p, 1234, 5678); err != nil {
			return fmt.Errorf("chown %s: %w", it.name, err)
		}
	}
	e.hook(StagePopulated, e.dir)
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		return err
	}
	listed := map[string]fs.FileMode{}
	for _, de := range ents {
		listed[de.Name()] = de.Type()
	}
	for _, it := range items {
		if got, ok := listed[it.name]; !ok || got != it.dirType {
			return fmt.Errorf("listing shows %s as %v (listed %v), want %v", it.name, got, ok, it.dirType)
		}
		st, err := lstat(e.path(it.name))
		if err != nil {
			return err
		}
		rdev := uint64(st.Rdev)
		if uint32(st.Mode)&unix.S_IFMT != it.ifmt || uint32(st.Mode)&0o7777 != it.mode || st.Uid != 1234 || st.Gid != 5678 ||
			unix.Major(rdev) != it.major || unix.Minor(rdev) != it.minor {
			return fmt.Errorf("%s: mode %o owner %d:%d rdev %d:%d, want %o|%o 1234:5678 %d:%d", it.name, st.Mode, st.Uid, st.Gid,
				unix.Major(rdev), unix.Minor(rdev), it.ifmt, it.mode, it.major, it.minor)
		}
	}
	for _, it := range items {
		p := e.path(it.name)
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := expectGone(p); err != nil {
			return err
		}
	}
	e.note("fifo, block 8:1, char 4:5 and a bound unix socket: created, listed, stat'ed, removed")
	return nil
}

// bindUnixSocket leaves a unix socket at path, as a daemon that bound it would.
func bindUnixSocket(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrUnix{Name: path})
}
