package nfshandle

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Filesystems whose kernel handles cannot be used (see doc.go, "Path handles").
const (
	magicMSDOS = 0x4d44     // FAT12/16/32: handles go stale once the inode leaves the cache
	magicExFAT = 0x2011bab0 // no export support at all
	magicFUSE  = 0x65735546 // ntfs-3g: node ids are per-mount, and ntfs-3g exports nothing
)

// needsPaths reports whether the filesystem under fd needs path handles.
func needsPaths(fd int) (bool, uint32) {
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) != nil {
		return false, 0
	}
	switch uint32(sfs.Type) {
	case magicMSDOS, magicExFAT, magicFUSE:
		return true, uint32(sfs.Type)
	}
	return false, uint32(sfs.Type)
}

const (
	pathVersion = 2
	pathSize    = headerSize + 8
	rootID      = 1
)

type childKey struct {
	parent uint64
	name   string // folded on case-insensitive filesystems
}

type pnode struct {
	parent uint64
	name   string // as the filesystem spells it
}

// pathIDs maps ids to (parent, name) and back for one mounted filesystem.
type pathIDs struct {
	fold bool // FAT and exFAT compare names case-insensitively

	mu       sync.Mutex
	byID     map[uint64]pnode
	kids     map[childKey]uint64
	gen      map[string]uint32 // paths removed or replaced through the server: their next file gets a new id
	byIno    map[uint64]uint64 // kernel inode (valid while cached) -> id, for fileids
	nkids    map[uint64]int    // children known per directory id
	lastWalk time.Time
}

// shared keeps each mount's ids across server restarts inside one agent, so handles held by a
// client survive them even for files renamed before the restart.
var (
	sharedMu sync.Mutex
	shared   = map[string]*pathIDs{}
)

func sharedIDs(key string, fold bool) *pathIDs {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	p := shared[key]
	if p == nil {
		p = &pathIDs{fold: fold, byID: map[uint64]pnode{rootID: {}}, kids: map[childKey]uint64{},
			gen: map[string]uint32{}, byIno: map[uint64]uint64{}, nkids: map[uint64]int{}}
		shared[key] = p
	}
	return p
}

func (p *pathIDs) key(parent uint64, name string) childKey {
	if p.fold {
		name = strings.ToUpper(name)
	}
	return childKey{parent, name}
}

func (p *pathIDs) foldPath(rel string) string {
	if p.fold {
		return strings.ToUpper(rel)
	}
	return rel
}

// hashID is the id a path gets: the same after a restart as long as the file was not renamed or
// replaced, so the client's handles still resolve.
func hashID(path string, gen uint32) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	if gen != 0 {
		h.Write([]byte{0})
		h.Write([]byte(strconv.FormatUint(uint64(gen), 10)))
	}
	id := h.Sum64() &^ (1 << 63) // clear of kernel inode numbers used as a fallback
	if id <= rootID {
		id += 2
	}
	return id
}

// idOf returns the id of rel (a path relative to the root), creating ids for components not
// seen yet. Caller holds mu.
func (p *pathIDs) idOf(rel string) uint64 {
	id := uint64(rootID)
	if rel == "" {
		return id
	}
	walked := ""
	for _, name := range strings.Split(rel, "/") {
		if walked != "" {
			walked += "/"
		}
		walked += name
		k := p.key(id, name)
		next, ok := p.kids[k]
		if !ok {
			fp := p.foldPath(walked)
			next = hashID(fp, p.gen[fp])
			for _, used := p.byID[next]; used; _, used = p.byID[next] {
				next = (next + 1) &^ (1 << 63) // collision: probe (this id is then not restart-stable)
			}
			p.kids[k] = next
			p.byID[next] = pnode{id, name}
			p.nkids[id]++
		}
		id = next
	}
	return id
}

// pathOf is the current path of id. Caller holds mu.
func (p *pathIDs) pathOf(id uint64) (string, bool) {
	var parts []string
	for id != rootID {
		n, ok := p.byID[id]
		if !ok || len(parts) > 4096 {
			return "", false
		}
		parts = append(parts, n.name)
		id = n.parent
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/"), true
}

// forget drops id and everything under it (a removed file or directory).
func (p *pathIDs) forget(id uint64, rel string) {
	n, ok := p.byID[id]
	if !ok || id == rootID {
		return
	}
	delete(p.kids, p.key(n.parent, n.name))
	delete(p.byID, id)
	p.nkids[n.parent]--
	p.gen[p.foldPath(rel)]++
	if p.nkids[id] == 0 {
		delete(p.nkids, id)
		return
	}
	for k, c := range p.kids {
		if k.parent == id {
			p.forget(c, rel+"/"+p.byID[c].name)
		}
	}
	delete(p.nkids, id)
}

// walk gives every file in the tree its id (after a restart that lost the table, so an old
// handle of a file that was not renamed resolves again). At most once every 10 seconds.
func (p *pathIDs) walk(root string) {
	if time.Since(p.lastWalk) < 10*time.Second {
		return
	}
	p.lastWalk = time.Now()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return nil
		}
		p.idOf(path[len(root)+1:])
		return nil
	})
}

func (t *Table) pathHandle(id uint64) []byte {
	h := make([]byte, pathSize)
	h[0], h[1], h[2], h[3] = magic0, magic1, pathVersion, 8
	copy(h[4:12], t.fsid[:])
	binary.BigEndian.PutUint64(h[headerSize:], id)
	return h
}

func (t *Table) pathDecode(h []byte) (uint64, error) {
	if len(h) != pathSize || h[0] != magic0 || h[1] != magic1 || h[2] != pathVersion || h[3] != 8 ||
		string(h[4:12]) != string(t.fsid[:]) {
		return 0, ErrStale
	}
	return binary.BigEndian.Uint64(h[headerSize:]), nil
}

// relOf is the path of fd (plus name) relative to the root.
func (t *Table) relOf(dirfd int, name string) (string, error) {
	p, err := readlinkFd(dirfd)
	if err != nil {
		return "", err
	}
	var rel string
	switch {
	case p == t.root:
	case strings.HasPrefix(p, strings.TrimSuffix(t.root, "/")+"/"):
		rel = p[len(strings.TrimSuffix(t.root, "/"))+1:]
	default:
		return "", ErrStale
	}
	if name != "" {
		if strings.Contains(name, "/") || name == "." || name == ".." {
			return "", unix.EINVAL
		}
		if rel != "" {
			rel += "/"
		}
		rel += name
	}
	return rel, nil
}

func (t *Table) pathAt(dirfd int, name string) ([]byte, error) {
	var rel string
	var err error
	if name == ".." { // READDIRPLUS's ".." entry: the parent's path
		if rel, err = t.relOf(dirfd, ""); err == nil && rel == "" {
			err = ErrStale // above the export root
		}
		rel = rel[:max(strings.LastIndexByte(rel, '/'), 0)]
	} else {
		rel, err = t.relOf(dirfd, name)
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH); err != nil {
		return nil, err
	}
	p := t.paths
	p.mu.Lock()
	id := p.idOf(rel)
	p.byIno[st.Ino] = id
	p.mu.Unlock()
	return t.pathHandle(id), nil
}

func (t *Table) pathOpen(h []byte, flags int) (int, string, error) {
	id, err := t.pathDecode(h)
	if err != nil {
		return -1, "", err
	}
	p := t.paths
	p.mu.Lock()
	rel, ok := p.pathOf(id)
	if !ok {
		p.walk(t.root)
		rel, ok = p.pathOf(id)
	}
	p.mu.Unlock()
	if !ok {
		return -1, "", ErrStale
	}
	name := rel
	if name == "" {
		name = "."
	}
	// RESOLVE_BENEATH: a path the table holds can never lead out of the root, even if the tree
	// changed under it; no filesystem that uses path handles has symlinks the kernel follows here.
	fd, err := unix.Openat2(t.mountFd, name, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
			p.mu.Lock()
			p.forget(id, rel)
			p.mu.Unlock()
			return -1, "", ErrStale
		}
		if errors.Is(err, unix.ELOOP) && flags&unix.O_PATH == 0 {
			return -1, "", unix.ELOOP
		}
		return -1, "", err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		p.mu.Lock()
		p.byIno[st.Ino] = id
		p.mu.Unlock()
	}
	return fd, rel, nil
}

// UsesPaths reports whether handles are the server's own path handles (see doc.go): then the
// filesystem has no hard links the server may create, and fileids come from FileID.
func (t *Table) UsesPaths() bool { return t.paths != nil }

// FileID is the NFS fileid of st: its inode, or with path handles the file's id (FAT and exFAT
// number inodes afresh each time one is read into the cache).
//
// With kernel handles, a file on another st_dev than the root (a btrfs subvolume: each numbers
// its inodes from 256) gets its device mixed into the high bits, so a subvolume's root is not
// taken for its parent's (find and rsync report a filesystem loop, Finder merges them). The
// anonymous device numbers btrfs gives subvolumes last as long as the mount.
func (t *Table) FileID(st *unix.Stat_t) uint64 {
	if t.paths == nil {
		if st.Dev != t.rootDev {
			return st.Ino ^ uint64(unix.Minor(st.Dev))<<40 ^ uint64(unix.Major(st.Dev))<<56
		}
		return st.Ino
	}
	t.paths.mu.Lock()
	id, ok := t.paths.byIno[st.Ino]
	t.paths.mu.Unlock()
	if !ok {
		return st.Ino
	}
	return id
}

// FileIDAt is the fileid of name in dirfd for a directory listing, whose inode numbers (ino)
// FAT and exFAT make up for files not in the cache.
func (t *Table) FileIDAt(dirfd int, name string, ino uint64) uint64 {
	if t.paths == nil {
		return ino
	}
	rel, err := t.relOf(dirfd, "")
	if err != nil {
		return ino
	}
	switch name {
	case ".":
	case "..":
		if i := strings.LastIndexByte(rel, '/'); i >= 0 {
			rel = rel[:i]
		} else {
			rel = ""
		}
	default:
		if rel != "" {
			rel += "/"
		}
		rel += name
	}
	t.paths.mu.Lock()
	defer t.paths.mu.Unlock()
	return t.paths.idOf(rel)
}

// Removed tells the table that name in dirfd is gone (REMOVE, RMDIR, or replaced by RENAME):
// a new file made there later gets a new handle, so an old handle goes stale as it would on ext4.
func (t *Table) Removed(dirfd int, name string) {
	if t.paths == nil {
		return
	}
	rel, err := t.relOf(dirfd, name)
	if err != nil {
		return
	}
	p := t.paths
	p.mu.Lock()
	defer p.mu.Unlock()
	parent := p.idOf(dirOf(rel))
	if id, ok := p.kids[p.key(parent, baseOf(rel))]; ok {
		p.forget(id, rel)
	} else {
		p.gen[p.foldPath(rel)]++
	}
}

// Renamed moves the entry: the handle of a renamed file or directory (and of everything under
// it) stays the same.
func (t *Table) Renamed(fromDir int, fromName string, toDir int, toName string) {
	if t.paths == nil {
		return
	}
	from, err1 := t.relOf(fromDir, fromName)
	to, err2 := t.relOf(toDir, toName)
	if err1 != nil || err2 != nil {
		return
	}
	p := t.paths
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.idOf(from)
	toParent := p.idOf(dirOf(to))
	tk := p.key(toParent, baseOf(to))
	if old, ok := p.kids[tk]; ok && old != id {
		p.forget(old, to)
	}
	n := p.byID[id]
	delete(p.kids, p.key(n.parent, n.name))
	p.nkids[n.parent]--
	p.byID[id] = pnode{toParent, baseOf(to)}
	p.kids[tk] = id
	p.nkids[toParent]++
	// The old path's next file must not take over the moved file's id.
	p.gen[p.foldPath(from)]++
}

func dirOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

func baseOf(rel string) string { return rel[strings.LastIndexByte(rel, '/')+1:] }

// ForcePaths makes every table use path handles, on any filesystem: for tests only (the
// server's suite runs once more this way).
var ForcePaths bool

func (t *Table) usePaths(abs string, magic uint32) {
	var stx unix.Statx_t
	mnt := uint64(0)
	if unix.Statx(t.rootFd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) == nil {
		mnt = stx.Mnt_id
	}
	key := abs + "\x00" + strconv.FormatUint(binary.BigEndian.Uint64(t.fsid[:]), 16) + "\x00" + strconv.FormatUint(mnt, 10)
	t.paths = sharedIDs(key, magic == magicMSDOS || magic == magicExFAT)
}
