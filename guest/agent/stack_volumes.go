package agent

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/pkg/control"
)

// A drive's stack: partitions, mdadm arrays, LVM groups and LUKS containers in any order, down
// to the filesystems ("volumes") one of which is mounted. What is assembled is undone in reverse
// order at shutdown.

type undoStep struct {
	what string
	fn   func(ctx context.Context) error
}

// stackState is what the agent assembled. Guarded by opMu (every operation that touches it).
type stackState struct {
	undo     []undoStep
	vgActive map[string]bool   // volume groups activated
	mdActive map[string]string // array UUID -> /dev/mdN
	mdName   map[string]string // /dev/mdN -> md/<name>
	readOnly map[string]string // device -> why it may only be mounted read-only
	mappers  map[string]string // LUKS container -> its open mapping
	locked   []string          // LUKS members a Partial unlock left for another passphrase
	notice   map[string]string // device -> what the user should know when it is mounted
	lvs      []lvInfo
	want     string // the volume named at unlock
	degraded bool   // AllowDegraded given at unlock
}

func newStackState() stackState {
	return stackState{vgActive: map[string]bool{}, mdActive: map[string]string{}, mdName: map[string]string{},
		readOnly: map[string]string{}, mappers: map[string]string{}, notice: map[string]string{}}
}

func (s *stackState) push(what string, fn func(ctx context.Context) error) {
	s.undo = append(s.undo, undoStep{what, fn})
}

// layered says whether anything beyond one LUKS mapping was assembled.
func (s *stackState) layered() bool {
	return len(s.vgActive) > 0 || len(s.mdActive) > 0 || len(s.mappers) > 1
}

// closeStack undoes the stack in reverse order, dropping each step once done, so a retry after
// a busy device picks up where it stopped. With nothing recorded it closes the one mapping.
func (a *Agent) closeStack(ctx context.Context) error {
	if len(a.stk.undo) == 0 {
		return a.crypt.Close(ctx)
	}
	for len(a.stk.undo) > 0 {
		u := a.stk.undo[len(a.stk.undo)-1]
		if err := u.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", u.what, err)
		}
		a.stk.undo = a.stk.undo[:len(a.stk.undo)-1]
	}
	a.stk = newStackState()
	return nil
}

// blockDev is one device the stack may use, probed.
type blockDev struct {
	dev  string
	name string // the volume name the user gives (see control.Stack.Volume)
	in   blkid.Info
	size int64
	part bool // a partition
	// inside is the LUKS container this is the open mapping of ("" = none).
	inside string
}

// diskNames names the VM's disks and partitions: vda is "" (or "d1" when there are several
// disks), its partition 2 "p2"; the second disk is "d2", its partitions "d2p1".
func diskNames(ds []control.Disk) map[string]string {
	names := map[string]string{}
	var disks []string
	for _, d := range ds {
		if !isPartition(d.Device, ds) {
			disks = append(disks, d.Device)
		}
	}
	for i, disk := range disks {
		prefix := ""
		if i > 0 {
			prefix = "d" + strconv.Itoa(i+1)
		}
		names[disk] = prefix
		if prefix == "" && len(disks) > 1 {
			names[disk] = "d1"
		}
		for _, d := range ds {
			if n, ok := partNumber(disk, d.Device); ok {
				names[d.Device] = prefix + "p" + n
			}
		}
	}
	return names
}

// partNumber reports whether dev is a partition of disk (vda1, nvme0n1p1), and its number.
func partNumber(disk, dev string) (string, bool) {
	rest, ok := strings.CutPrefix(dev, disk)
	rest = strings.TrimPrefix(rest, "p")
	if !ok || rest == "" {
		return "", false
	}
	if _, err := strconv.Atoi(rest); err != nil {
		return "", false
	}
	return rest, true
}

func isPartition(dev string, ds []control.Disk) bool {
	for _, d := range ds {
		if d.Device != dev {
			if _, ok := partNumber(d.Device, dev); ok {
				return true
			}
		}
	}
	return false
}

// blockDevs lists and probes every device in the stack: disks, partitions, md arrays, logical
// volumes and open mappings.
func (a *Agent) blockDevs(ctx context.Context) ([]blockDev, error) {
	ds, err := a.disks()
	if err != nil {
		return nil, err
	}
	names := diskNames(ds)
	var out []blockDev
	add := func(dev, name string, size int64, part bool) {
		in, err := blkid.Probe(ctx, a.deps.Run, dev)
		if err != nil {
			a.tl.Logf("warn", "cannot probe %s: %v", dev, err)
			return
		}
		out = append(out, blockDev{dev: dev, name: name, in: in, size: size, part: part})
	}
	for _, d := range ds {
		add(d.Device, names[d.Device], d.Size, isPartition(d.Device, ds))
	}
	for _, md := range sortedValues(a.stk.mdActive) {
		add(md, a.stk.mdName[md], 0, false)
	}
	for _, lv := range a.stk.lvs {
		add(lv.DMPath, lv.VG+"/"+lv.Name, lv.Size, false)
	}
	// A mapping takes the name of its container: the filesystem in LUKS partition p2 is "p2".
	byDev := map[string]string{}
	for _, b := range out {
		byDev[b.dev] = b.name
	}
	for _, c := range sortedKeys(a.stk.mappers) {
		add(a.stk.mappers[c], byDev[c], 0, false)
		out[len(out)-1].inside = c
	}
	a.mu.Lock()
	mapper, device := a.mapper, a.device
	a.mu.Unlock()
	if mapper != "" && len(a.stk.mappers) == 0 {
		add(mapper, byDev[device], 0, false)
		out[len(out)-1].inside = device
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func sortedValues(m map[string]string) []string {
	var v []string
	for _, x := range m {
		v = append(v, x)
	}
	sort.Strings(v)
	return v
}

// hasContainers says whether devs hold something to assemble (LVM, RAID) or a partition table.
func hasContainers(devs []blockDev) (lvm, md bool) {
	for _, b := range devs {
		switch b.in.Type {
		case "LVM2_member":
			lvm = true
		case "linux_raid_member":
			md = true
		}
	}
	return lvm, md
}

// assemble brings up RAID arrays then LVM groups found on devs (and on what that reveals).
func (a *Agent) assemble(ctx context.Context, allowDegraded bool) ([]blockDev, error) {
	for round := 0; round < 4; round++ {
		devs, err := a.blockDevs(ctx)
		if err != nil {
			return nil, err
		}
		lvm, md := hasContainers(devs)
		progressed := false
		if md {
			var members []string
			for _, b := range devs {
				if b.in.Type == "linux_raid_member" {
					members = append(members, b.dev)
				}
			}
			news, err := a.assembleMD(ctx, members, allowDegraded)
			if err != nil {
				return nil, err
			}
			progressed = progressed || len(news) > 0
		}
		if lvm {
			before := len(a.stk.vgActive)
			lvs, err := a.activateLVM(ctx)
			if err != nil {
				return nil, err
			}
			a.stk.lvs = lvs
			progressed = progressed || len(a.stk.vgActive) > before
		}
		if !progressed {
			return devs, nil
		}
	}
	return a.blockDevs(ctx)
}

// volumeList describes volumes for messages: `vg0/home (ext4 "Home", 8.0 GiB)`.
func volumeList(vs []blockDev) string {
	var s []string
	for _, v := range vs {
		d := v.in.Type
		if v.in.Label != "" {
			d += fmt.Sprintf(" %q", v.in.Label)
		}
		if v.size > 0 {
			d += ", " + humanSize(v.size)
		}
		s = append(s, fmt.Sprintf("%s (%s)", displayName(v), d))
	}
	return strings.Join(s, ", ")
}

func displayName(v blockDev) string {
	if v.name == "" {
		return "the whole drive"
	}
	return v.name
}

func humanSize(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// matches says whether the user's volume name designates v.
func (v blockDev) matches(want string) bool {
	w := strings.TrimPrefix(want, "/dev/")
	return v.name == want || v.name == strings.TrimPrefix(want, "lvm:") || v.dev == want ||
		strings.TrimPrefix(v.dev, "/dev/") == w || (v.in.Label != "" && v.in.Label == want) ||
		// LVM's own spellings: vg-lv (the dm name) and /dev/vg/lv.
		(strings.Contains(v.name, "/") && strings.ReplaceAll(v.name, "/", "-") == w)
}

// pickVolume chooses the filesystem to mount among devs.
func pickVolume(devs []blockDev, want string) (blockDev, error) {
	var fss, locked []blockDev
	for _, b := range devs {
		switch {
		case isLUKS(b.in):
			opened := false
			for _, o := range devs {
				if o.inside == b.dev {
					opened = true
				}
			}
			if !opened {
				locked = append(locked, b)
			}
		case b.in.Type != "" && mountable(b.in.Type):
			fss = append(fss, b)
		}
	}
	if want != "" {
		for _, v := range fss {
			if v.matches(want) {
				return v, nil
			}
		}
		for _, v := range locked {
			if v.matches(want) {
				return blockDev{}, control.Errorf(control.CodeBadState, "volume %s is LUKS-encrypted and still locked: unlock it, then mount it", want)
			}
		}
		return blockDev{}, control.Errorf(control.CodeNotFound, "no volume %q on this drive; it holds %s: name one of those with --volume", want, orNothing(volumeList(fss)))
	}
	switch len(fss) {
	case 1:
		return fss[0], nil
	case 0:
		if len(locked) > 0 {
			return blockDev{}, control.Errorf(control.CodeBadState, "%s is LUKS-encrypted: unlock it, then mount it", displayName(locked[0]))
		}
		return blockDev{}, control.Errorf(control.CodeUnsupportedFS, "the drive holds no filesystem luksmount can mount; it may be empty or damaged")
	}
	return blockDev{}, control.Errorf(control.CodeInvalidArgument, "the drive holds %d filesystems: %s; name the one to mount with --volume, for example --volume %s", len(fss), volumeList(fss), fss[len(fss)-1].name)
}

func orNothing(s string) string {
	if s == "" {
		return "no filesystem"
	}
	return s
}

// stackNeeded says whether mount or unlock must look at the whole stack rather than one device:
// a volume was named, something is assembled, or the first disk holds no filesystem or LUKS
// itself (a partition table, an LVM or RAID member).
func (a *Agent) stackNeeded(devs []blockDev, want string) bool {
	if want != "" || a.stk.layered() {
		return true
	}
	for _, b := range devs {
		if b.part || b.inside != "" {
			continue
		}
		switch b.in.Type {
		case "LVM2_member", "linux_raid_member":
			return true
		case "":
			for _, o := range devs {
				if o.part && strings.HasPrefix(o.dev, b.dev) {
					return true
				}
			}
		}
		return false // the first disk decides
	}
	return false
}

// resolveVolume is resolveSource for stacks; ok is false when the single-device rule applies.
func (a *Agent) resolveVolume(ctx context.Context, reqDev, want string, allowDegraded bool) (source, bool, error) {
	if reqDev != "" {
		return source{}, false, nil
	}
	if want == "" {
		want = a.stk.want
	}
	a.mu.Lock()
	single := a.mapper != "" && len(a.stk.mappers) == 0
	a.mu.Unlock()
	if want == "" && single && !a.stk.layered() && len(a.stk.lvs) == 0 {
		return source{}, false, nil // one LUKS mapping, nothing on top: no probing (the common case)
	}
	devs, err := a.blockDevs(ctx)
	if err != nil {
		return source{}, true, err
	}
	if !a.stackNeeded(devs, want) {
		return source{}, false, nil
	}
	if devs, err = a.assemble(ctx, allowDegraded || a.stk.degraded); err != nil {
		return source{}, true, err
	}
	v, err := pickVolume(devs, want)
	if err != nil {
		return source{}, true, err
	}
	src := source{dev: v.dev, in: v.in, mapped: v.inside != "" || a.mapper != "", roWhy: a.stk.readOnly[v.dev]}
	return src, true, nil
}

// wantVolume records the volume and RAID policy a request names (unlock's carry over to mount).
func (s *stackState) wantVolume(r control.Stack) {
	if r.Volume != "" {
		s.want = r.Volume
	}
	s.degraded = s.degraded || r.AllowDegraded
}

// probeStack answers a probe; with Assemble it brings up RAID and LVM first and lists volumes.
func (a *Agent) probeStack(ctx context.Context, r *control.Request) (any, error) {
	var req control.ProbeRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if !req.Assemble {
		return a.probe(ctx)
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	a.stk.wantVolume(req.Stack)
	devs, err := a.assemble(ctx, a.stk.degraded)
	if err != nil {
		return nil, err
	}
	rep := control.ProbeReply{}
	for _, b := range devs {
		rep.Volumes = append(rep.Volumes, control.Volume{Name: b.name, Device: b.dev, Type: b.in.Type, Label: b.in.Label, Size: b.size})
	}
	return rep, nil
}
