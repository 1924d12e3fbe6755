// Package session keeps the registry of running luksmount sessions: one 0700 directory per session
// under a runtime directory, holding state.json (0600), the supervisor's lock and its control
// socket. A session whose supervisor no longer holds its lock is stale and is cleaned up by the
// next command that looks.
package session

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Session lifecycle states as status reports them.
const (
	StateStarting  = "starting"   // checks, VM boot
	StateUnlocking = "unlocking"  // waiting for or trying a passphrase
	StateMounting  = "mounting"   // guest mount, NFS server start
	StateServing   = "serving"    // NFS served, not mounted on the host (--no-mount)
	StateMounted   = "mounted"    // mounted on the host
	StateStopping  = "stopping"   // unmount and guest shutdown under way
	StateDriveLost = "drive-lost" // the drive stopped answering; VM stopped, waiting for `stop`
)

// State is what state.json holds; its JSON keys are what `luksmount status --json` prints, and are
// documented in the README: keep them stable.
type State struct {
	ID         string `json:"id"`
	Target     string `json:"target"`
	Label      string `json:"label"`
	FSType     string `json:"fstype"`
	Encrypted  bool   `json:"encrypted"`
	ReadOnly   bool   `json:"read_only"`
	Mountpoint string `json:"mountpoint"`
	// MountpointCreated: luksmount made the mount point directory, so cleaning up removes it.
	MountpointCreated bool      `json:"mountpoint_created,omitempty"`
	NFSAddress        string    `json:"nfs_address"`
	Export            string    `json:"export"`
	State             string    `json:"state"`
	VMPid             int       `json:"vm_pid"`
	SupervisorPid     int       `json:"supervisor_pid"`
	MemoryMiB         int       `json:"memory_mib"`
	CPUs              int       `json:"cpus"`
	Accel             string    `json:"accel"`
	Started           time.Time `json:"started"`
	Log               string    `json:"log"`
	Fault             string    `json:"fault,omitempty"` // what went wrong with the drive or filesystem
}

// Files inside a session directory.
const (
	stateFile  = "state.json"
	lockFile   = "lock"
	socketFile = "control.sock"
)

var (
	// ErrNoSession means no running session matches.
	ErrNoSession = errors.New("no running luksmount session")
	// ErrAmbiguous means several sessions match a query.
	ErrAmbiguous = errors.New("several luksmount sessions match")
	// ErrBusy means a live session already serves that target.
	ErrBusy = errors.New("already in use by a running luksmount session")
)

// ID names a target's session: readable, stable for one target path, and safe as a file name.
func ID(target string) string {
	sum := sha256.Sum256([]byte(target))
	base := unsafeChars.ReplaceAllString(filepath.Base(target), "_")
	if len(base) > 32 {
		base = base[:32]
	}
	return base + "-" + hex.EncodeToString(sum[:4])
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Registry is a set of runtime directories holding sessions. Create uses the first; List and Find
// look in all of them (a user's own directory and the system one used under sudo).
type Registry struct {
	Dirs []string
	// Owner, if UID >= 0, is who session directories and files are chowned to (the invoking user
	// under sudo, so they can run status and stop without sudo).
	UID, GID int
	// OnStale, if set, cleans up after a session whose supervisor died (a mount it left behind)
	// before its directory is removed. It runs while the dead session's lock is held.
	OnStale func(State) error
}

// Session is a session this process created and owns.
type Session struct {
	Dir   string
	State State
	uid   int
	gid   int
	lock  *os.File
}

// SocketPath is where the supervisor listens for stop and status requests.
func (s *Session) SocketPath() string { return filepath.Join(s.Dir, socketFile) }

// SocketPath returns the control socket of the session with state st in registry dir.
func SocketPath(dir, id string) string { return filepath.Join(dir, id, socketFile) }

// Create registers a new session for st.Target and takes its lock; the lock is held until Close.
// It fails with ErrBusy if a live session holds that target.
func (r *Registry) Create(st State) (*Session, error) {
	if len(r.Dirs) == 0 {
		return nil, errors.New("no runtime directory configured")
	}
	root := r.Dirs[0]
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create runtime directory %s: %w", root, err)
	}
	if err := checkRoot(root); err != nil {
		return nil, err
	}
	if st.ID == "" {
		st.ID = ID(st.Target)
	}
	// Another registry directory may hold a live session for the same target.
	for _, d := range r.Dirs[1:] {
		if live, _ := r.load(d, st.ID); live != nil {
			return nil, fmt.Errorf("%s: %w (session %s, pid %d)", st.Target, ErrBusy, st.ID, live.SupervisorPid)
		}
	}
	dir := filepath.Join(root, st.ID)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cannot create session directory %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open session lock: %w", err)
	}
	if err := tryLock(lf); err != nil {
		lf.Close()
		var prev State
		readJSON(filepath.Join(dir, stateFile), &prev)
		return nil, fmt.Errorf("%s: %w (session %s, pid %d)", st.Target, ErrBusy, st.ID, prev.SupervisorPid)
	}
	// We hold the lock: anything left in the directory is from a dead session.
	os.Remove(filepath.Join(dir, socketFile))
	s := &Session{Dir: dir, State: st, uid: r.UID, gid: r.GID, lock: lf}
	if r.UID >= 0 {
		os.Chown(dir, r.UID, r.GID)
		lf.Chown(r.UID, r.GID)
	}
	if err := s.Save(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Save writes state.json atomically.
func (s *Session) Save() error {
	data, err := json.MarshalIndent(s.State, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.Dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("cannot write session state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write session state: %w", err)
	}
	if s.uid >= 0 {
		tmp.Chown(s.uid, s.gid)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write session state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.Dir, stateFile)); err != nil {
		return fmt.Errorf("cannot write session state: %w", err)
	}
	return nil
}

// Update changes the state with fn and saves it.
func (s *Session) Update(fn func(*State)) error {
	fn(&s.State)
	return s.Save()
}

// Close removes the session directory and releases the lock (in that order, so nobody sees an
// unlocked directory with live-looking contents).
func (s *Session) Close() error {
	if s.lock == nil {
		return nil
	}
	err := os.RemoveAll(s.Dir)
	s.lock.Close()
	s.lock = nil
	return err
}

// List returns the live sessions, oldest first, removing stale ones it can.
func (r *Registry) List() ([]State, error) {
	var out []State
	seen := map[string]bool{}
	for _, root := range r.Dirs {
		ents, err := os.ReadDir(root)
		if err != nil {
			continue // missing or not ours to read
		}
		for _, e := range ents {
			if !e.IsDir() || seen[e.Name()] {
				continue
			}
			st, err := r.load(root, e.Name())
			if err != nil || st == nil {
				continue
			}
			seen[e.Name()] = true
			out = append(out, *st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// load returns the session id in root if its supervisor is alive; a dead session's directory
// is removed. A directory we may not read is skipped (nil, nil).
func (r *Registry) load(root, id string) (*State, error) {
	dir := filepath.Join(root, id)
	lf, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A directory without a lock is debris from a crash between mkdir and open.
			if st, e := os.Stat(dir); e == nil && time.Since(st.ModTime()) > time.Minute {
				os.RemoveAll(dir)
			}
		}
		return nil, nil
	}
	defer lf.Close()
	if tryLock(lf) == nil {
		// Nobody holds it: the supervisor is gone. Clean up while we hold the lock.
		if r.OnStale != nil {
			var st State
			if readJSON(filepath.Join(dir, stateFile), &st) == nil {
				if err := r.OnStale(st); err != nil {
					fmt.Fprintf(os.Stderr, "luksmount: cleaning up after the dead session for %s: %v\n", st.Target, err)
				}
			}
		}
		os.RemoveAll(dir)
		return nil, nil
	}
	var st State
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Dir returns the registry directory holding session id, or "".
func (r *Registry) Dir(id string) string {
	for _, root := range r.Dirs {
		if _, err := os.Stat(filepath.Join(root, id, stateFile)); err == nil {
			return filepath.Join(root, id)
		}
	}
	return ""
}

// Find returns the live session whose id, target or mount point is query. Paths are compared
// after cleaning, and a bare macOS disk name matches its /dev path.
func (r *Registry) Find(query string) (*State, error) {
	all, err := r.List()
	if err != nil {
		return nil, err
	}
	var hits []State
	for _, st := range all {
		if Matches(st, query) {
			hits = append(hits, st)
		}
	}
	switch len(hits) {
	case 0:
		return nil, fmt.Errorf("%w for %s", ErrNoSession, query)
	case 1:
		return &hits[0], nil
	default:
		return nil, fmt.Errorf("%w %s: %s", ErrAmbiguous, query, ids(hits))
	}
}

// Matches reports whether query names st (by id, target or mount point).
func Matches(st State, query string) bool {
	if query == "" {
		return false
	}
	if query == st.ID {
		return true
	}
	candidates := []string{query}
	if abs, err := filepath.Abs(query); err == nil {
		candidates = append(candidates, abs)
	}
	if !strings.Contains(query, "/") {
		candidates = append(candidates, "/dev/"+query)
	}
	if r, err := filepath.EvalSymlinks(query); err == nil {
		candidates = append(candidates, r)
	}
	for _, c := range candidates {
		c = filepath.Clean(c)
		if c == filepath.Clean(st.Target) || (st.Mountpoint != "" && c == filepath.Clean(st.Mountpoint)) {
			return true
		}
		// Any one member names a multi-device target ("a.img+b.img", supervisor.MemberSeparator).
		for _, m := range strings.Split(st.Target, "+") {
			if m != st.Target && m != "" && c == filepath.Clean(m) {
				return true
			}
		}
	}
	return false
}

func ids(sts []State) string {
	var s []string
	for _, st := range sts {
		s = append(s, st.ID)
	}
	return strings.Join(s, ", ")
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
