//go:build linux

package nfsserver

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/luksmount/luksmount/guest/xdr"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	nfsxdr "github.com/willscott/go-nfs-client/nfs/xdr"
)

// TestGoNFSClientReadDirPlus: go-nfs-client's READDIRPLUS loop (dircount 512, maxcount 4096,
// continuing from the last entry's cookie until eof) lists a directory completely and ends.
func TestGoNFSClientReadDirPlus(t *testing.T) {
	for _, n := range []int{0, 1, 3, 40, 500} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			root := t.TempDir()
			want := []string{}
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("entry-%04d-with-a-longer-name.txt", i)
				if err := os.WriteFile(root+"/"+name, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				want = append(want, name)
			}
			addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true})
			host, ps, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(ps)
			auth := rpc.NewAuthUnix("t", 0, 0).Auth()
			mc, err := nfsc.DialServiceAtPort(host, p)
			if err != nil {
				t.Fatal(err)
			}
			defer mc.Close()
			type mnt struct {
				rpc.Header
				Dirpath string
			}
			res, err := mc.Call(&mnt{rpc.Header{Rpcvers: 2, Prog: nfsc.MountProg, Vers: nfsc.MountVers, Proc: nfsc.MountProc3MNT, Cred: auth, Verf: rpc.AuthNull}, "/"})
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := nfsxdr.ReadUint32(res); st != 0 {
				t.Fatalf("MNT status %d", st)
			}
			fh, _ := nfsxdr.ReadOpaque(res)
			nc, err := nfsc.DialServiceAtPort(host, p)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := nfsc.NewTargetWithClient(nc, auth, fh, "/", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			type result struct {
				names []string
				err   error
			}
			done := make(chan result, 1)
			go func() {
				ents, err := tg.ReadDirPlus("/")
				var names []string
				for _, e := range ents {
					if e.FileName != "." && e.FileName != ".." {
						names = append(names, e.FileName)
					}
				}
				done <- result{names, err}
			}()
			select {
			case r := <-done:
				if r.err != nil {
					t.Fatal(r.err)
				}
				sort.Strings(r.names)
				if fmt.Sprint(r.names) != fmt.Sprint(want) && !(len(r.names) == 0 && len(want) == 0) {
					t.Fatalf("listed %d names, want %d", len(r.names), len(want))
				}
			case <-time.After(10 * time.Second):
				nc.Close()
				t.Fatal("READDIRPLUS never reached eof")
			}
		})
	}
}

// TestReaddirplusDotEntries (wire): READDIRPLUS gives "." the directory's own attributes (the
// mtime GETATTR reports) and handle, ".." its parent's, and at the export root ".." is the root
// itself; the last page says eof.
func TestReaddirplusDotEntries(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(root+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	addr, _ := startOurs(t, Options{Root: root, OwnerFromRoot: true})
	c := dial(t, addr)
	rootH := c.mount()
	_, subH, _ := c.lookup(rootH, "sub")
	type ent struct {
		attr *fattr
		h    []byte
	}
	list := func(h []byte) (map[string]ent, bool) {
		st, r := c.nfsCall(17, args(func(w *xdr.Writer) {
			w.Opaque(h)
			w.Uint64(0)
			w.Fixed(make([]byte, 8))
			w.Uint32(512)
			w.Uint32(4096)
		}))
		if st != 0 {
			t.Fatalf("READDIRPLUS status %d", st)
		}
		readPostOp(r)
		r.Fixed(8)
		got := map[string]ent{}
		for r.Bool() {
			r.Uint64()
			name := r.String(255)
			r.Uint64()
			e := ent{attr: readPostOp(r)}
			if r.Bool() {
				e.h = append([]byte(nil), r.Opaque(64)...)
			}
			got[name] = e
		}
		eof := r.Bool()
		if r.Err() != nil {
			t.Fatalf("decoding READDIRPLUS: %v", r.Err())
		}
		return got, eof
	}
	for _, tc := range []struct {
		dir, parent []byte
		name        string
	}{{rootH, rootH, "the root"}, {subH, rootH, "a subdirectory"}} {
		got, eof := list(tc.dir)
		if !eof {
			t.Errorf("%s: a one-page listing without eof", tc.name)
		}
		for name, wantH := range map[string][]byte{".": tc.dir, "..": tc.parent} {
			e := got[name]
			_, want := c.getattr(wantH)
			if e.attr == nil || e.h == nil {
				t.Fatalf("%s: %q has attributes %v, handle %x", tc.name, name, e.attr, e.h)
			}
			if e.attr.mtime != want.mtime || e.attr.fileid != want.fileid || string(e.h) != string(wantH) {
				t.Errorf("%s: %q is fileid %d mtime %v handle %x; GETATTR of %x says fileid %d mtime %v",
					tc.name, name, e.attr.fileid, e.attr.mtime, e.h, wantH, want.fileid, want.mtime)
			}
		}
	}
}
