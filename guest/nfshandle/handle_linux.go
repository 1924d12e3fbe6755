package nfshandle

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/pkg/mountinfo"
	"golang.org/x/sys/unix"
)

const (
	magic0, magic1, version = 'L', 'M', 1
	headerSize              = 16 // magic(2) version(1) length(1) fsid(8) type(4)
)

// Table turns files under one root into handles and back.
type Table struct {
	root    string // canonical absolute path of the root
	rootFd  int    // O_PATH|O_DIRECTORY fd of the root
	mountFd int    // O_RDONLY fd of the root: open_by_handle_at refuses O_PATH fds
	fsid    [8]byte
	rootH   []byte
	// wholeFS: the root is the root of its filesystem, so every inode a
	// handle can name is inside the tree and Open need not check paths.
	wholeFS bool
	// paths: the filesystem's own handles are unusable, so handles are ids the table gives
	// paths (paths_linux.go); nil means kernel handles.
	paths *pathIDs
	// rootDev is the root's st_dev: a btrfs subvolume inside the tree has its own.
	rootDev uint64
}

// Open prepares handles for the tree at root.
func Open(root string) (*Table, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", root, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", root, err)
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", abs, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot statfs %s: %w", abs, err)
	}
	mfd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot open %s: %w", abs, err)
	}
	t := &Table{root: abs, rootFd: fd, mountFd: mfd}
	binary.BigEndian.PutUint32(t.fsid[0:], uint32(sfs.Fsid.Val[0]))
	binary.BigEndian.PutUint32(t.fsid[4:], uint32(sfs.Fsid.Val[1]))
	t.wholeFS = isFSRoot(fd, abs)
	var rst unix.Stat_t
	if unix.Fstat(fd, &rst) == nil {
		t.rootDev = rst.Dev
	}
	if need, magic := needsPaths(fd); need || ForcePaths {
		t.usePaths(abs, magic)
	}
	if t.rootH, err = t.At(fd, ""); err != nil {
		t.Close()
		return nil, fmt.Errorf("cannot make file handles on %s (needs root and a filesystem that exports handles, such as ext4): %w", abs, err)
	}
	return t, nil
}

// Close releases the root fd.
func (t *Table) Close() error {
	unix.Close(t.mountFd)
	return unix.Close(t.rootFd)
}

// RootPath is the canonical path of the root.
func (t *Table) RootPath() string { return t.root }

// RootFd is an O_PATH fd of the root.
func (t *Table) RootFd() int { return t.rootFd }

// Root is the handle of the root directory.
func (t *Table) Root() []byte { return append([]byte(nil), t.rootH...) }

// FSID is the filesystem identity embedded in every handle.
func (t *Table) FSID() uint64 { return binary.BigEndian.Uint64(t.fsid[:]) }

// At returns the handle of name in directory dirfd without following a final
// symlink; an empty name means dirfd itself. The caller must make sure
// dirfd is inside the root and name is a single component.
func (t *Table) At(dirfd int, name string) ([]byte, error) {
	if t.paths != nil {
		if name == "" && dirfd == t.rootFd {
			return t.pathHandle(rootID), nil
		}
		return t.pathAt(dirfd, name)
	}
	flags := 0 // name_to_handle_at does not follow a final symlink unless asked (AT_SYMLINK_FOLLOW)
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	kh, _, err := unix.NameToHandleAt(dirfd, name, flags)
	if err != nil {
		return nil, err
	}
	b := kh.Bytes()
	if len(b) > MaxSize-headerSize || len(b) > 255 {
		return nil, fmt.Errorf("kernel file handle of %d bytes is too large for NFSv3", len(b))
	}
	h := make([]byte, headerSize, headerSize+len(b)+3)
	h[0], h[1], h[2], h[3] = magic0, magic1, version, byte(len(b))
	copy(h[4:12], t.fsid[:])
	binary.BigEndian.PutUint32(h[12:16], uint32(kh.Type()))
	h = append(h, b...)
	for len(h)%4 != 0 {
		h = append(h, 0)
	}
	return h, nil
}

func (t *Table) decode(h []byte) (unix.FileHandle, error) {
	if len(h) < headerSize || len(h) > MaxSize || len(h)%4 != 0 ||
		h[0] != magic0 || h[1] != magic1 || h[2] != version || string(h[4:12]) != string(t.fsid[:]) {
		return unix.FileHandle{}, ErrStale
	}
	n := int(h[3])
	if headerSize+n > len(h) || n == 0 {
		return unix.FileHandle{}, ErrStale
	}
	return unix.NewFileHandle(int32(binary.BigEndian.Uint32(h[12:16])), h[headerSize:headerSize+n]), nil
}

// Open opens the file a handle names with the given open flags (O_PATH
// works) and checks it is still linked and inside the root. The path
// returned is relative to the root ("" for the root itself).
//
// When the root is the root of its filesystem the path is not looked up
// ("" is returned for every file): the kernel gives a file whose dentry was
// evicted a disconnected dentry with no path, and such a file is inside the
// tree all the same. Use Path when the path itself is needed.
func (t *Table) Open(h []byte, flags int) (fd int, rel string, err error) {
	return t.open(h, flags, !t.wholeFS)
}

func (t *Table) open(h []byte, flags int, needRel bool) (fd int, rel string, err error) {
	if t.paths != nil {
		return t.pathOpen(h, flags)
	}
	kh, err := t.decode(h)
	if err != nil {
		return -1, "", err
	}
	fd, err = unix.OpenByHandleAt(t.mountFd, kh, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		if err == unix.ESTALE || err == unix.ENOENT || err == unix.EINVAL {
			return -1, "", ErrStale
		}
		if err == unix.ELOOP && flags&unix.O_PATH == 0 {
			return -1, "", unix.ELOOP
		}
		return -1, "", fmt.Errorf("cannot open file handle: %w", err)
	}
	if needRel {
		rel, err = t.relPath(fd)
	} else {
		err = checkLinked(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, "", err
	}
	return fd, rel, nil
}

func checkLinked(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("cannot stat file handle: %w", err)
	}
	if st.Nlink == 0 {
		return ErrStale
	}
	return nil
}

// isFSRoot reports whether path (open as fd) is the root of its filesystem:
// the mount it is on is mounted at path and shows the filesystem from "/".
func isFSRoot(fd int, path string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
		return false
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	id := strconv.FormatUint(stx.Mnt_id, 10)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == id {
			return f[3] == "/" && mountinfo.Unescape(f[4]) == path
		}
	}
	return false
}

// Path returns the current path, relative to the root, of the file a handle names.
func (t *Table) Path(h []byte) (string, error) {
	fd, rel, err := t.open(h, unix.O_PATH, true)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return rel, nil
}

func (t *Table) relPath(fd int) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("cannot stat file handle: %w", err)
	}
	if st.Nlink == 0 {
		return "", ErrStale
	}
	p, err := readlinkFd(fd)
	if err != nil {
		return "", err
	}
	if p == t.root {
		return "", nil
	}
	prefix := t.root
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if !strings.HasPrefix(p, prefix) {
		return "", ErrStale // outside the served tree (or not reachable from it)
	}
	return p[len(prefix):], nil
}

func readlinkFd(fd int) (string, error) {
	buf := make([]byte, 512)
	name := "/proc/self/fd/" + strconv.Itoa(fd)
	for {
		n, err := unix.Readlink(name, buf)
		if err != nil {
			return "", fmt.Errorf("cannot read path of file handle: %w", err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) > 1<<16 {
			return "", fmt.Errorf("path of file handle too long")
		}
		buf = make([]byte, len(buf)*2)
	}
}
