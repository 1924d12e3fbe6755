// Package nfsmount builds and runs the host-side NFSv3 mount of the guest's
// export: mount_nfs on macOS, mount -t nfs on Linux. The argument builders
// are platform-neutral so both are unit-tested anywhere; the executors live
// in the _darwin/_linux files.
package nfsmount

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Transfer and timeout choices, shared by both platforms.
const (
	// 1 MiB is go-nfs's preferred size and the largest macOS accepts
	// (openradar 48467699: bigger is refused); the default 32K costs ~30x
	// more round trips through gvproxy.
	IOSize = 1 << 20
	// Soft mounts: a hard mount to a VM that stops answering hangs processes
	// uninterruptibly and, on macOS, has panicked the kernel on hot-unplug
	// (anylinuxfs PR #149). But a soft timeout turns into EIO for the app
	// (a failed save), and go-nfs answers one RPC at a time per connection,
	// so a slow flush to a USB disk can legitimately stall every request for
	// tens of seconds. Hence a long per-try timeout: 30 s (timeo is in
	// tenths of a second) x 3 retries ~ 2 minutes before an error. A VM that
	// really dies is noticed by the host (QEMU exits) and force-unmounted
	// long before that.
	TimeoDeciseconds = 300
	Retrans          = 3
	// macOS: declare the mount dead (force-unmountable, Finder's "server
	// not responding" dialog) only after 3 minutes without any reply:
	// longer than one soft timeout cycle so a slow flush never kills it.
	// Finder itself uses 45 s for interactive shares.
	DeadTimeoutSeconds = 180
	// macOS read-ahead in rsize blocks; 16 is the kernel default. Kept
	// explicit so the benchmark can tune it in one place.
	ReadAhead = 16
)

// Options describe one mount of the guest's export.
type Options struct {
	Host       string // server address; default 127.0.0.1
	Port       int    // NFS port (go-nfs also serves MOUNT on it)
	MountPort  int    // MOUNT port; default Port
	Export     string // exported path; default "/"
	Mountpoint string
	ReadOnly   bool
	// IgnoreOwnership adds macOS `noowners`: every file appears owned by
	// the mounting user.
	IgnoreOwnership bool
	// Extra is the user's --nfs-options ("a=b,c"); it overrides ours.
	Extra string
	// UID and GID of the invoking (sudo) user; the macOS mount is made as
	// that user so a later plain `umount` and Finder's Eject work. -1 or 0
	// means none: the mount is made as the current user.
	UID, GID int
	// Groups are that user's groups for the mount_nfs child (nil = just GID),
	// never the supervisor's (root's wheel, operator, ...).
	Groups []uint32
}

func (o Options) withDefaults() (Options, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Export == "" {
		o.Export = "/"
	}
	if o.MountPort == 0 {
		o.MountPort = o.Port
	}
	if o.Port <= 0 || o.Port > 65535 || o.MountPort <= 0 || o.MountPort > 65535 {
		return o, fmt.Errorf("invalid NFS port %d/%d", o.Port, o.MountPort)
	}
	if !strings.HasPrefix(o.Export, "/") {
		return o, fmt.Errorf("invalid export path %q: must start with /", o.Export)
	}
	if o.Mountpoint == "" {
		return o, errors.New("no mount point given")
	}
	return o, nil
}

// Source returns "host:/export", bracketing IPv6 addresses.
func (o Options) Source() string {
	h := o.Host
	if h == "" {
		h = "127.0.0.1"
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	e := o.Export
	if e == "" {
		e = "/"
	}
	return h + ":" + e
}

// DarwinOptions returns the -o list for macOS mount_nfs.
func DarwinOptions(o Options) ([]string, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	base := []string{
		"vers=3", "tcp", // no v2/UDP fallback probing
		"port=" + strconv.Itoa(o.Port),
		"mountport=" + strconv.Itoa(o.MountPort), // skips the portmapper for MOUNT
		// Remote locks make the kernel look up rpc.statd via the portmapper on
		// 127.0.0.1, i.e. macOS's own rpcbind, and fail; locks kept in the
		// client VFS still work for apps, and we are the only client.
		"locallocks",
		"nfc", // normalise names to NFC: accented names fail otherwise (anylinuxfs #68)
		"rsize=" + strconv.Itoa(IOSize), "wsize=" + strconv.Itoa(IOSize),
		"readahead=" + strconv.Itoa(ReadAhead),
		"soft", "intr",
		"timeo=" + strconv.Itoa(TimeoDeciseconds),
		"retrans=" + strconv.Itoa(Retrans),
		"deadtimeout=" + strconv.Itoa(DeadTimeoutSeconds),
		// mount_nfs applies /etc/nfs.conf's nfs.client.mount.options before -o (mount_nfs.c main:
		// config_read, then getopt; config_read -> handle_mntopts), so name both defaults that
		// file could flip: a `resvport` there makes the kext demand root for the reserved source
		// port (kext/nfs_vfsops.c), failing the mount as the user; a `nobrowse` (MNT_DONTBROWSE)
		// hides the volume from Finder and its Eject. Both parse as the "no"/inverse forms of
		// mopts entries (mopts "resvport", MOPT_STDOPTS "browse"); later options win.
		"noresvport", "browse",
	}
	if o.ReadOnly {
		base = append(base, "ro")
	}
	if o.IgnoreOwnership {
		base = append(base, "noowners")
	}
	return MergeOptions(base, o.Extra)
}

// DarwinArgs returns the argv (after the program name) for /sbin/mount_nfs.
func DarwinArgs(o Options) ([]string, error) {
	opts, err := DarwinOptions(o)
	if err != nil {
		return nil, err
	}
	return []string{"-o", strings.Join(opts, ","), o.Source(), o.Mountpoint}, nil
}

// LinuxOptions returns the -o list for Linux mount -t nfs.
func LinuxOptions(o Options) ([]string, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	base := []string{
		"vers=3", "proto=tcp",
		"port=" + strconv.Itoa(o.Port),
		"mountport=" + strconv.Itoa(o.MountPort), "mountproto=tcp",
		// No NLM/statd in the guest; locks stay local to this client.
		"nolock",
		"rsize=" + strconv.Itoa(IOSize), "wsize=" + strconv.Itoa(IOSize),
		"soft",
		"timeo=" + strconv.Itoa(TimeoDeciseconds),
		"retrans=" + strconv.Itoa(Retrans),
	}
	if ip := net.ParseIP(o.Host); ip != nil {
		// Lets the kernel mount without the mount.nfs helper (nfs-common).
		base = append(base, "addr="+o.Host)
	}
	if o.ReadOnly {
		base = append(base, "ro")
	}
	return MergeOptions(base, o.Extra)
}

// LinuxArgs returns the argv (after the program name) for mount(8).
func LinuxArgs(o Options) ([]string, error) {
	opts, err := LinuxOptions(o)
	if err != nil {
		return nil, err
	}
	return []string{"-t", "nfs", "-o", strings.Join(opts, ","), o.Source(), o.Mountpoint}, nil
}

// optionGroup returns the identity used for de-duplication: options in the
// same group contradict each other, and the later one wins.
func optionGroup(opt string) string {
	name, _, _ := strings.Cut(opt, "=")
	name = strings.ToLower(name)
	switch name {
	case "hard":
		return "soft"
	case "udp":
		return "tcp"
	case "proto":
		return "tcp"
	case "locallocks", "nolocks", "nolock", "lock", "locks", "local_lock":
		return "locks"
	case "rw", "rdonly":
		return "ro"
	}
	if strings.HasPrefix(name, "no") && len(name) > 2 {
		return name[2:]
	}
	return name
}

// MergeOptions appends the user's comma-separated options to base. A user
// option replaces every base option of the same name or of a contradicting
// one (hard vs soft, noac vs ac, nolocks vs locallocks, ...); duplicates
// collapse to the last occurrence. Empty items are dropped.
func MergeOptions(base []string, user string) ([]string, error) {
	var extra []string
	for _, f := range strings.Split(user, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.ContainsAny(f, " \t\n\x00") {
			return nil, fmt.Errorf("invalid NFS option %q: options cannot contain spaces", f)
		}
		if v, ok := strings.CutPrefix(f, "rwsize="); ok {
			extra = append(extra, "rsize="+v, "wsize="+v) // so each overrides ours
			continue
		}
		extra = append(extra, f)
	}
	all := append(append([]string(nil), base...), extra...)
	last := map[string]int{}
	for i, f := range all {
		last[optionGroup(f)] = i
	}
	out := make([]string, 0, len(all))
	for i, f := range all {
		if last[optionGroup(f)] == i {
			out = append(out, f)
		}
	}
	return out, nil
}

// ServeOnlyHint tells a user how to mount the export by hand, e.g. after
// `luksmount --no-mount`. addr is "host:port".
func ServeOnlyHint(addr, export string) string {
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		return fmt.Sprintf("The NFSv3 export %s is served at %s (MOUNT and NFS on the same port).", export, addr)
	}
	o := Options{Host: host, Port: port, Export: export, Mountpoint: "MOUNTPOINT"}
	mac, _ := DarwinOptions(o)
	lin, _ := LinuxOptions(o)
	return fmt.Sprintf(`The NFSv3 export %s is served at %s (MOUNT and NFS on the same port). To mount it by hand:
  macOS:  mkdir -p ~/luks && /sbin/mount_nfs -o %s %s ~/luks
  Linux:  sudo mkdir -p /mnt/luks && sudo mount -t nfs -o %s %s /mnt/luks
Unmount with "umount <dir>" before stopping luksmount.`,
		o.Source(), addr, strings.Join(mac, ","), o.Source(), strings.Join(lin, ","), o.Source())
}

// Mounter mounts and unmounts the export on this host.
type Mounter interface {
	Mount(ctx context.Context, o Options) error
	// Unmount unmounts mountpoint; force also aborts in-flight requests
	// (used when the server is already gone).
	Unmount(ctx context.Context, mountpoint string, force bool) error
}

// Cred is a user to run a command as; nil means the current user. Groups
// are its supplementary groups (at least GID).
type Cred struct {
	UID, GID uint32
	Groups   []uint32
}

// Runner runs a command and returns its combined output.
type Runner interface {
	Run(ctx context.Context, cred *Cred, name string, args ...string) ([]byte, error)
}

// commandError wraps a failed command with its output.
func commandError(name string, args []string, out []byte, err error) error {
	msg := strings.TrimSpace(string(out))
	if msg == "" {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
}

// runMount runs the mount as the invoking user (o.UID > 0), with that user's
// groups, so the user owns the mount and can unmount it (and Finder can eject
// it) without sudo; otherwise as the current user.
//
// There is no fallback to a root mount when the user's mount fails: a
// root-owned mount under /Volumes looks fine until Eject asks for a password
// and `umount` says "not permitted", and it would hide why the user's mount
// failed. The one known cause, a `resvport` in /etc/nfs.conf, is overridden
// by our `noresvport`; anything else is reported with mount_nfs's own words.
// A user who wants a root mount asks for it with the `resvport` NFS option,
// which needs root anyway.
func runMount(ctx context.Context, r Runner, o Options, prog string, args []string) error {
	var cred *Cred
	if o.UID > 0 && !wantsReservedPort(o.Extra) {
		gid := uint32(max(o.GID, 0))
		cred = &Cred{UID: uint32(o.UID), GID: gid, Groups: withGroup(o.Groups, gid)}
	}
	out, err := r.Run(ctx, cred, prog, args...)
	if err == nil {
		return nil
	}
	err = commandError(prog, args, out, err)
	if cred != nil {
		return fmt.Errorf("cannot mount the NFS export on %s as uid %d: %w; luksmount does not retry as root (Finder could not eject that mount); add --nfs-options resvport to mount as root on purpose", o.Mountpoint, o.UID, err)
	}
	return fmt.Errorf("cannot mount the NFS export on %s: %w", o.Mountpoint, err)
}

// wantsReservedPort reports whether the user's options end with resvport on.
func wantsReservedPort(extra string) bool {
	on := false
	for _, f := range strings.Split(extra, ",") {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "resvport":
			on = true
		case "noresvport":
			on = false
		}
	}
	return on
}

// withGroup returns groups with gid first and no duplicates.
func withGroup(groups []uint32, gid uint32) []uint32 {
	out := []uint32{gid}
	for _, g := range groups {
		if g != gid && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// ParseIDGroups reads `id -G` output ("20 12 61 79 80").
func ParseIDGroups(out string) ([]uint32, error) {
	var gs []uint32
	for _, f := range strings.Fields(out) {
		g, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad group id %q in id -G output", f)
		}
		gs = append(gs, uint32(g))
	}
	if len(gs) == 0 {
		return nil, errors.New("id -G printed no groups")
	}
	return gs, nil
}

// userGroups asks id(1) for uid's groups: directory-service groups (staff,
// admin, ...) are not in /etc/group, which is all os/user reads without cgo.
// On failure the mount gets only the primary group.
func userGroups(ctx context.Context, r Runner, uid int) []uint32 {
	out, err := r.Run(ctx, nil, "/usr/bin/id", "-G", strconv.Itoa(uid))
	if err != nil {
		return nil
	}
	gs, _ := ParseIDGroups(string(out))
	return gs
}
