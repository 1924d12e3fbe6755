package rpcfront

import (
	"bufio"
	"net"
	"time"
)

// admitLocked registers c. At MaxConns it first closes, to make room, a
// connection that never sent a call (oldest first: real clients call at
// once) or else one idle for at least minIdle (idle longest first: NFS
// clients reconnect by themselves); if there is none, c is refused, so a
// client that is using its connection is never cut off by a flood.
func (s *Server) admitLocked(c net.Conn) (*connState, bool) {
	if len(s.conns) >= s.cfg.MaxConns {
		var victim net.Conn
		var best int64
		now := time.Now().UnixNano()
		for vc, st := range s.conns {
			if st.busy.Load() != 0 {
				continue
			}
			rank := st.idleSince.Load() // smaller is closed first
			if !st.used.Load() {
				rank -= now // before every used connection
			} else if now-rank < int64(minIdle) {
				continue
			}
			if victim == nil || rank < best {
				victim, best = vc, rank
			}
		}
		if victim == nil {
			return nil, false
		}
		victim.Close() // its serveConn removes it
		delete(s.conns, victim)
		s.logf("nfs: at %d connections: closed idle %s for %s", s.cfg.MaxConns, victim.RemoteAddr(), c.RemoteAddr())
	}
	st := &connState{}
	st.idleSince.Store(time.Now().UnixNano())
	s.conns[c] = st
	return st, true
}

// readRecord waits (without a deadline: idle connections are fine) for the
// next record to begin, then reads it with RecordTimeout per fragment, its
// bytes taken from mem before they are allocated. On success the record
// counts as a call in flight on st and holds len(rec) bytes of mem.
func (s *Server) readRecord(c net.Conn, br *bufio.Reader, st *connState, mem *budget) ([]byte, error) {
	c.SetReadDeadline(time.Time{})
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	st.enter()
	c.SetReadDeadline(time.Now().Add(s.cfg.RecordTimeout)) // a record mark sent in part
	held := 0
	rec, err := readFragments(br, s.cfg.MaxRecord, func(n int) error {
		if !mem.acquire(n) {
			return net.ErrClosed
		}
		held += n
		c.SetReadDeadline(time.Now().Add(s.cfg.RecordTimeout))
		return nil
	})
	if err != nil {
		mem.release(held)
		st.leave()
		return nil, err
	}
	return rec, nil
}
