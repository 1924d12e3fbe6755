package rootfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-git/go-billy/v5"
	"golang.org/x/sys/unix"
)

// Options tunes an FS.
type Options struct {
	ReadOnly bool
	// Owner gives the ids for files the FS creates; ok=false keeps the server's.
	Owner func() (uid, gid int, ok bool)
	// MapChown translates ids a client asks for into ids stored on disk.
	MapChown func(uid, gid int) (int, int)
	// OnStat sees every stat the FS makes (the server caches attributes by inode).
	OnStat func(st *unix.Stat_t)
}

// FS is a billy.Filesystem (with Change, Symlink and TempFile) over an os.Root.
type FS struct {
	root *os.Root
	opts Options
}

var (
	_ billy.Filesystem = (*FS)(nil)
	_ billy.Change     = (*FS)(nil)
)

// ErrEscape means a name tried to leave the tree (such as "..").
var ErrEscape = errors.New("path escapes the served tree")

// New opens dir as the root of an FS.
func New(dir string, opts Options) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", dir, err)
	}
	return &FS{root: r, opts: opts}, nil
}

// Close releases the root.
func (f *FS) Close() error { return f.root.Close() }

func clean(name string) string {
	name = path.Clean("/" + strings.ReplaceAll(name, "\\", "/"))
	if name == "/" {
		return "."
	}
	return name[1:]
}

// Capabilities reports what the FS can do; without WriteCapability go-nfs answers ROFS.
func (f *FS) Capabilities() billy.Capability {
	c := billy.ReadCapability | billy.SeekCapability | billy.ReadAndWriteCapability | billy.TruncateCapability
	if !f.opts.ReadOnly {
		c |= billy.WriteCapability
	}
	return c
}

func (f *FS) writable() error {
	if f.opts.ReadOnly {
		return &fs.PathError{Op: "write", Err: syscall.EROFS}
	}
	return nil
}

// Create creates or truncates a file.
func (f *FS) Create(name string) (billy.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens a file for reading.
func (f *FS) Open(name string) (billy.File, error) { return f.OpenFile(name, os.O_RDONLY, 0) }

// OpenFile opens name inside the tree; a final symlink is followed only within the tree.
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	name = clean(name)
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := f.writable(); err != nil {
			return nil, err
		}
	}
	created := false
	if flag&os.O_CREATE != 0 {
		if _, err := f.root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			created = true
		}
	}
	fl, err := f.root.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if created {
		if uid, gid, ok := f.owner(); ok {
			_ = fl.Chown(uid, gid)
		}
	}
	return &file{File: fl, name: name}, nil
}

func (f *FS) owner() (int, int, bool) {
	if f.opts.Owner == nil {
		return 0, 0, false
	}
	return f.opts.Owner()
}

// Stat follows a final symlink (within the tree).
func (f *FS) Stat(name string) (os.FileInfo, error) {
	fi, err := f.root.Stat(clean(name))
	if err == nil {
		f.seen(fi)
	}
	return fi, err
}

// Lstat describes name itself.
func (f *FS) Lstat(name string) (os.FileInfo, error) {
	fi, err := f.root.Lstat(clean(name))
	if err == nil {
		f.seen(fi)
	}
	return fi, err
}

func (f *FS) seen(fi os.FileInfo) {
	if f.opts.OnStat == nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.opts.OnStat((*unix.Stat_t)(unsafe.Pointer(st)))
	}
}

// Rename renames the entry itself (never a symlink's target).
func (f *FS) Rename(from, to string) error {
	if err := f.writable(); err != nil {
		return err
	}
	return f.root.Rename(clean(from), clean(to))
}

// Remove unlinks the entry itself (never a symlink's target).
func (f *FS) Remove(name string) error {
	if err := f.writable(); err != nil {
		return err
	}
	name = clean(name)
	if name == "." {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EBUSY}
	}
	return f.root.Remove(name)
}

// Join joins path elements.
func (f *FS) Join(elem ...string) string { return path.Join(elem...) }

// TempFile creates a new file with a random name in dir.
func (f *FS) TempFile(dir, prefix string) (billy.File, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return f.OpenFile(path.Join(clean(dir), prefix+hex.EncodeToString(b[:])), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// ReadDir lists dir with lstat-style entries, sorted as the kernel returns them.
func (f *FS) ReadDir(dir string) ([]os.FileInfo, error) {
	d, err := f.root.Open(clean(dir))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make([]os.FileInfo, 0, len(names))
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // raced with a removal
		}
		if f.opts.OnStat != nil {
			f.opts.OnStat(&st)
		}
		out = append(out, NewFileInfo(n, &st))
	}
	return out, nil
}

// MkdirAll creates dir and missing parents.
func (f *FS) MkdirAll(dir string, perm os.FileMode) error {
	if err := f.writable(); err != nil {
		return err
	}
	dir = clean(dir)
	if fi, err := f.root.Lstat(dir); err == nil {
		if fi.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.EEXIST}
	}
	if perm == 755 {
		perm = 0o755 // go-nfs's default when the client sends no mode is decimal 755
	}
	if err := f.root.MkdirAll(dir, perm&os.ModePerm); err != nil {
		return err
	}
	if uid, gid, ok := f.owner(); ok {
		_ = f.lchown(dir, uid, gid)
	}
	return nil
}

// Symlink creates link pointing at target (stored verbatim; following it stays in the tree).
func (f *FS) Symlink(target, link string) error {
	if err := f.writable(); err != nil {
		return err
	}
	link = clean(link)
	if err := f.root.Symlink(target, link); err != nil {
		return err
	}
	if uid, gid, ok := f.owner(); ok {
		_ = f.lchown(link, uid, gid)
	}
	return nil
}

// Readlink returns a symlink's target.
func (f *FS) Readlink(link string) (string, error) { return f.root.Readlink(clean(link)) }

// Chroot is not supported: one FS serves one tree.
func (f *FS) Chroot(string) (billy.Filesystem, error) {
	return nil, errors.New("rootfs: chroot not supported")
}

// Root is "/": paths are relative to the tree.
func (f *FS) Root() string { return "/" }

// at opens the parent of name and returns it with the final component.
func (f *FS) at(name string) (*os.File, string, error) {
	name = clean(name)
	dir, base := path.Split(name)
	if dir == "" {
		dir = "."
	}
	if base == ".." {
		return nil, "", ErrEscape
	}
	d, err := f.root.Open(dir)
	if err != nil {
		return nil, "", err
	}
	return d, base, nil
}

// Chmod changes the mode of name itself; symlinks have no mode of their own on Linux, so it is a no-op for them.
func (f *FS) Chmod(name string, mode os.FileMode) error {
	if err := f.writable(); err != nil {
		return err
	}
	d, base, err := f.at(name)
	if err != nil {
		return err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	defer unix.Close(fd)
	return ChmodFd(fd, UnixMode(mode))
}

// ChmodFd sets the permission bits (07777) of the inode behind an O_PATH fd; symlinks are left alone.
func ChmodFd(fd int, mode uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode&0o7777, 0)
}

// UnixMode converts an os.FileMode's permission and special bits to 07777 form.
func UnixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// Lchown changes the owner of name itself, mapping client ids to disk ids.
func (f *FS) Lchown(name string, uid, gid int) error {
	if err := f.writable(); err != nil {
		return err
	}
	if f.opts.MapChown != nil {
		uid, gid = f.opts.MapChown(uid, gid)
	}
	return f.lchown(name, uid, gid)
}

func (f *FS) lchown(name string, uid, gid int) error {
	d, base, err := f.at(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Fchownat(int(d.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// Chown is Lchown: an NFS SETATTR names the object itself.
func (f *FS) Chown(name string, uid, gid int) error { return f.Lchown(name, uid, gid) }

// Chtimes sets the times of name itself.
func (f *FS) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.writable(); err != nil {
		return err
	}
	d, base, err := f.at(name)
	if err != nil {
		return err
	}
	defer d.Close()
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(int(d.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

type file struct {
	*os.File
	name string
}

func (f *file) Name() string  { return f.name }
func (f *file) Lock() error   { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }
func (f *file) Unlock() error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// fileInfo is an os.FileInfo made from a raw stat.
type fileInfo struct {
	name string
	st   syscall.Stat_t
}

// NewFileInfo wraps a stat result as an os.FileInfo whose Sys() is a *syscall.Stat_t.
func NewFileInfo(name string, st *unix.Stat_t) os.FileInfo {
	return &fileInfo{name: name, st: *(*syscall.Stat_t)(unsafe.Pointer(st))}
}

func (fi *fileInfo) Name() string { return fi.name }
func (fi *fileInfo) Size() int64  { return fi.st.Size }
func (fi *fileInfo) Mode() os.FileMode {
	m := os.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= os.ModeSocket
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		m |= os.ModeDevice
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.st.Mode&unix.S_IFMT == unix.S_IFDIR }
func (fi *fileInfo) Sys() any           { return &fi.st }

// OpenParent opens the directory holding name (inside the tree) and returns
// it with the final component, for callers that use *at syscalls.
func (f *FS) OpenParent(name string) (*os.File, string, error) { return f.at(name) }
