package nfsserver

import "golang.org/x/sys/unix"

// checkFixedAttrs refuses (PERM) a SETATTR that would change the mode or owner of a file on a
// filesystem that keeps neither (Options.FixedAttrs: NTFS through ntfs-3g, which would
// otherwise ignore the change and report success). Setting what is already there succeeds, as
// cp -p and Finder do that on every copy.
func (s *Server) checkFixedAttrs(fd int, a sattr) error {
	if !s.opts.FixedAttrs || a.mode == nil && a.uid == nil && a.gid == nil {
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
