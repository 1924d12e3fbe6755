package supervisor

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/control"
)

// lockedMembers plays the guest's side of Continue: members with passphrases of their own, a
// secret tried on every member neither open nor skipped, no secret assembling what is open.
type lockedMembers struct {
	mu        sync.Mutex
	pass      map[string]string // guest device -> its passphrase
	open      map[string]bool
	tried     map[string]int // guest device -> passphrases tried on it
	assembled []string       // the Skip of each Continue without a secret
	order     []string       // the devices in guest order
}

func (g *lockedMembers) handle(ctx context.Context, req *control.Request) (any, error) {
	var r control.UnlockRequest
	if err := req.Decode(&r); err != nil || !r.Continue || !r.Partial {
		return nil, control.Errorf(control.CodeInvalidArgument, "want a Partial Continue: %+v %v", r, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(req.Secret) == 0 {
		g.assembled = append(g.assembled, strings.Join(r.Skip, " "))
		return control.UnlockReply{Mapper: "/dev/mapper/luksmount"}, nil
	}
	opened := 0
	var locked []string
	for _, d := range g.order {
		if g.open[d] || slices.Contains(r.Skip, d) {
			continue
		}
		g.tried[d]++
		if g.pass[d] == string(req.Secret) {
			g.open[d] = true
			opened++
		} else {
			locked = append(locked, d)
		}
	}
	if opened == 0 {
		return nil, control.Errorf(control.CodeWrongPassphrase, "no key available with this passphrase")
	}
	if len(locked) == 0 {
		g.assembled = append(g.assembled, "after "+string(req.Secret))
	}
	return control.UnlockReply{Mapper: "/dev/mapper/luksmount", Locked: locked}, nil
}

// membersSup is a supervisor whose target is a.img+b.img+c.img+d.img, the first open, the other
// three locked with passphrases pb, pc, pd, answering with answers.
func membersSup(t *testing.T, answers ...string) (*sup, *lockedMembers, *scriptUI) {
	g := &lockedMembers{pass: map[string]string{"/dev/vdb": "pb", "/dev/vdc": "pc", "/dev/vdd": "pd"},
		open: map[string]bool{}, tried: map[string]int{}, order: []string{"/dev/vdb", "/dev/vdc", "/dev/vdd"}}
	a, b := net.Pipe()
	go (&control.Server{Handler: g.handle}).ServeConn(context.Background(), a)
	f := &fakeVM{done: make(chan struct{}), client: control.NewClient(b, nil)}
	t.Cleanup(func() { f.client.Close() })
	ui := &scriptUI{answers: answers}
	s := &sup{ui: ui, log: timelog.New(io.Discard), vm: f, dev: &blockdev.Device{Path: "a.img"},
		stack: &stackInfo{members: []*blockdev.Device{{Path: "b.img"}, {Path: "c.img"}, {Path: "d.img"}}}}
	return s, g, ui
}

func TestReturnAtOneLockedMemberSkipsOnlyIt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answers   []string
		open      string // the members open afterwards
		assembled string // what the guest was told to go on without ("after X": X opened the last)
		untried   string // a member no passphrase was tried on
		says      string // a progress line
	}{
		{"return at the first", []string{"", "pc", "pd"}, "/dev/vdc /dev/vdd", "after pd", "/dev/vdb", "b.img stays locked"},
		{"return at the middle", []string{"pb", "", "pd"}, "/dev/vdb /dev/vdd", "after pd", "", "c.img stays locked"},
		{"return at the last", []string{"pb", "pc", ""}, "/dev/vdb /dev/vdc", "/dev/vdd", "", "d.img stays locked"},
		{"return at every one", []string{"", "", ""}, "", "/dev/vdb /dev/vdc /dev/vdd", "/dev/vdb", "c.img stays locked"},
		{"return after a wrong one", []string{"wrong", "", "pc", "pd"}, "/dev/vdc /dev/vdd", "after pd", "", "wrong passphrase for b.img (attempt 1 of 3)"},
		{"one passphrase, two members", []string{"pc", "pb", ""}, "/dev/vdb /dev/vdc", "/dev/vdd", "", "d.img stays locked"},
		{"end of input leaves the rest", []string{"pb"}, "/dev/vdb", "/dev/vdc /dev/vdd", "", "d.img stays locked (no more input)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, g, ui := membersSup(t, tc.answers...)
			if err := s.unlockLocked(context.Background(), control.UnlockRequest{}, []string{"/dev/vdb", "/dev/vdc", "/dev/vdd"}); err != nil {
				t.Fatal(err)
			}
			var open []string
			for _, d := range g.order {
				if g.open[d] {
					open = append(open, d)
				}
			}
			if strings.Join(open, " ") != tc.open || strings.Join(g.assembled, ";") != tc.assembled {
				t.Errorf("open %v, assembled %q; want %q, %q", open, g.assembled, tc.open, tc.assembled)
			}
			if tc.untried != "" && g.tried[tc.untried] != 0 {
				t.Errorf("%d passphrases were tried on %s, which the user skipped", g.tried[tc.untried], tc.untried)
			}
			if len(ui.answers) != 0 {
				t.Errorf("answers left unasked: %q", ui.answers)
			}
			if !slices.Contains(ui.lines, tc.says) {
				t.Errorf("progress %q; want %q", ui.lines, tc.says)
			}
			ui.allWiped(t)
		})
	}
}

func TestLockedMemberThreeWrongOrEndOfInput(t *testing.T) {
	for _, tc := range []struct {
		answers []string
		tries   int
	}{{[]string{"x", "y", "z", "pc"}, 3}, {[]string{"x"}, 1}} {
		s, g, _ := membersSup(t, tc.answers...)
		err := s.unlockLocked(context.Background(), control.UnlockRequest{}, []string{"/dev/vdb", "/dev/vdc", "/dev/vdd"})
		var pe *PassphraseError
		if !errors.As(err, &pe) || pe.Target != "b.img" || pe.Attempts != tc.tries || len(g.assembled) != 0 {
			t.Errorf("answers %q: %v (assembled %q); want a PassphraseError for b.img after %d", tc.answers, err, g.assembled, tc.tries)
		}
	}
}
