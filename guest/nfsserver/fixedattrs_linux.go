package nfsserver

import (
	"sync"

	"golang.org/x/sys/unix"
)

// freshExclusive remembers files made by an EXCLUSIVE CREATE on a FixedAttrs filesystem until
// their first SETATTR: a client finishes such a create with a SETATTR of the mode it asked for
// (mkstemp: 0600), which is part of the create, so it is dropped as a local mount drops a
// create's mode, not refused.
type freshExclusive struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (f *freshExclusive) add(h []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) > 4096 {
		f.m = map[string]struct{}{} // a client that never sends the SETATTR must not grow it forever
	}
	f.m[string(h)] = struct{}{}
}

func (f *freshExclusive) take(h []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.m[string(h)]
	delete(f.m, string(h))
	return ok
}

// checkFixedAttrs refuses (PERM) a SETATTR that would change the mode or owner of a file on a
// filesystem that keeps neither (Options.FixedAttrs: FAT, exFAT, and NTFS through ntfs-3g,
// which would otherwise ignore the change and report success). Setting what is already there
// succeeds, as cp -p and Finder do that on every copy; the SETATTR that completes an EXCLUSIVE
// CREATE has its mode and owner dropped.
func (s *Server) checkFixedAttrs(fd int, h []byte, a *sattr) error {
	if !s.opts.FixedAttrs || a.mode == nil && a.uid == nil && a.gid == nil {
		return nil
	}
	if h != nil && s.fresh.take(h) {
		a.mode, a.uid, a.gid = nil, nil, nil
		return nil
	}
	st, err := fstat(fd)
	if err != nil {
		return err
	}
	uid, gid := s.ids.out(st.Uid, st.Gid)
	if a.mode != nil && *a.mode&0o7777 != st.Mode&0o7777 || a.uid != nil && *a.uid != uid || a.gid != nil && *a.gid != gid {
		return unix.EPERM
	}
	return nil
}
