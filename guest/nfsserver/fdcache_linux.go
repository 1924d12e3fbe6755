package nfsserver

import (
	"errors"
	"sync"

	"github.com/luksmount/luksmount/guest/nfshandle"
	"golang.org/x/sys/unix"
)

// fdCache keeps a few open files keyed by handle so READ and WRITE do not
// open and close per call (and, with paths set, O_PATH fds so GETATTR,
// ACCESS and LOOKUP's directory do not open_by_handle_at per call). Entries are reference counted; an entry is only
// closed when unused. Dirty data survives eviction in the page cache and is
// flushed by COMMIT (fsync on any fd of the inode) or by Close (syncfs).
type fdCache struct {
	t        *nfshandle.Table
	readOnly bool
	paths    bool // O_PATH fds of any type, not read-write regular files
	max      int

	mu   sync.Mutex
	m    map[string]*openFile
	tick uint64
}

type openFile struct {
	fd   int
	key  string
	refs int
	used uint64
	gone bool // evicted while in use: close on last release
	// noWrite is why a read-write server holds this file read-only (EROFS: the filesystem
	// turned read-only; EACCES, ETXTBSY): WRITE answers it instead of EBADF's EIO.
	noWrite error
}

func newFdCache(t *nfshandle.Table, readOnly bool, max int) *fdCache {
	return &fdCache{t: t, readOnly: readOnly, max: max, m: map[string]*openFile{}}
}

// get returns an open fd (read-write unless the server is read-only or the
// file cannot be opened for writing) for a regular file's handle.
func (c *fdCache) get(h []byte) (*openFile, error) {
	c.mu.Lock()
	c.tick++
	if of, ok := c.m[string(h)]; ok { // no allocation for a hit
		of.refs++
		of.used = c.tick
		c.mu.Unlock()
		return of, nil
	}
	c.mu.Unlock()

	flags := unix.O_RDWR
	switch {
	case c.paths:
		flags = unix.O_PATH
	case c.readOnly:
		flags = unix.O_RDONLY
	}
	fd, rel, err := c.t.Open(h, flags)
	var noWrite error
	// Wrapped by the handle table: errors.Is, or a filesystem that turned read-only (ext4's
	// errors=remount-ro) would answer every READ of an uncached file with ROFS.
	if !c.paths && (errors.Is(err, unix.EROFS) || errors.Is(err, unix.ETXTBSY) || errors.Is(err, unix.EACCES)) {
		noWrite = err
		fd, rel, err = c.t.Open(h, unix.O_RDONLY)
	}
	if err != nil {
		return nil, err
	}
	if c.paths && rel != "" {
		// The export is not a whole filesystem: Open checked that the
		// file is inside it, which a cached fd would stop re-checking.
		return &openFile{fd: fd, refs: 1, gone: true}, nil
	}
	key := string(h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if of, ok := c.m[key]; ok { // lost a race: use the winner
		unix.Close(fd)
		of.refs++
		return of, nil
	}
	if len(c.m) >= c.max {
		c.evictLocked()
	}
	of := &openFile{fd: fd, key: key, refs: 1, used: c.tick, noWrite: noWrite}
	c.m[key] = of
	return of, nil
}

// evictLocked drops the least recently used of a few entries (map order is
// random): close to LRU, without scanning the whole cache on every miss.
func (c *fdCache) evictLocked() {
	var victim *openFile
	seen := 0
	for _, of := range c.m {
		if victim == nil || of.used < victim.used {
			victim = of
		}
		if seen++; seen == 8 {
			break
		}
	}
	if victim != nil {
		c.dropLocked(victim)
	}
}

func (c *fdCache) dropLocked(of *openFile) {
	if c.m[of.key] == of {
		delete(c.m, of.key)
	}
	of.gone = true
	if of.refs == 0 {
		unix.Close(of.fd)
	}
}

// forget drops an entry (the file was unlinked).
func (c *fdCache) forget(of *openFile) {
	c.mu.Lock()
	c.dropLocked(of)
	c.mu.Unlock()
}

func (c *fdCache) put(of *openFile) {
	c.mu.Lock()
	of.refs--
	if of.refs == 0 && of.gone {
		unix.Close(of.fd)
	}
	c.mu.Unlock()
}

// closeAll closes every unused fd.
func (c *fdCache) closeAll() {
	c.mu.Lock()
	for _, of := range c.m {
		c.dropLocked(of)
	}
	c.mu.Unlock()
}

// forgetHandle drops the entry of a handle whose name was just removed or
// replaced, so a cached fd does not keep the inode (and its blocks) alive.
func (c *fdCache) forgetHandle(h []byte) {
	c.mu.Lock()
	if of, ok := c.m[string(h)]; ok {
		c.dropLocked(of)
	}
	c.mu.Unlock()
}
