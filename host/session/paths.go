package session

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
)

// Environment overrides, for tests and unusual setups (never secrets).
const (
	EnvRuntimeDir = "LUKSMOUNT_RUNTIME_DIR"
	EnvLogDir     = "LUKSMOUNT_LOG_DIR"
)

// User is who ran luksmount: under sudo, the user behind sudo.
type User struct {
	UID, GID int
	Name     string
	Home     string
	Sudo     bool // running as root on behalf of UID
}

// Invoker returns the invoking user.
func Invoker() User {
	u := User{UID: os.Getuid(), GID: os.Getgid()}
	if u.UID == 0 {
		uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
		gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
		if err1 == nil && err2 == nil && uid != 0 {
			u = User{UID: uid, GID: gid, Name: os.Getenv("SUDO_USER"), Sudo: true}
		}
	}
	if pw, err := user.LookupId(strconv.Itoa(u.UID)); err == nil {
		u.Name, u.Home = pw.Username, pw.HomeDir
	}
	if u.Home == "" {
		switch {
		case !u.Sudo:
			u.Home, _ = os.UserHomeDir()
		case runtime.GOOS == "darwin" && u.Name != "":
			// Without cgo, os/user can't ask Directory Services for macOS users.
			u.Home = "/Users/" + u.Name
		case u.Name != "":
			u.Home = "/home/" + u.Name
		}
	}
	return u
}

// ChownUID returns the uid to chown files to (or -1 when not under sudo).
func (u User) ChownUID() int {
	if u.Sudo {
		return u.UID
	}
	return -1
}

// RuntimeDirs lists where sessions live, the one new sessions go to first: the system directory
// for root, else the user's runtime directory; both are searched by status and stop.
func RuntimeDirs() []string {
	return runtimeDirs(runtime.GOOS, os.Geteuid(), Invoker(), os.Getenv, os.TempDir())
}

func runtimeDirs(goos string, euid int, u User, getenv func(string) string, tmp string) []string {
	if d := getenv(EnvRuntimeDir); d != "" {
		return []string{d}
	}
	system := "/run/luksmount"
	if goos == "darwin" {
		system = "/var/run/luksmount"
		// Not $TMPDIR: on macOS it is /var/folders/xx/<28 chars>/T/ (~49 bytes), which with a
		// session id and vm/control.sock overruns sun_path's 104 bytes (xnu bsd/sys/un.h). /tmp
		// (-> /private/tmp) is short, and the same for the user and for sudo.
		tmp = "/tmp"
	}
	userDir := filepath.Join(tmp, "luksmount-"+strconv.Itoa(u.UID))
	if x := getenv("XDG_RUNTIME_DIR"); x != "" && !u.Sudo && goos != "darwin" {
		userDir = filepath.Join(x, "luksmount")
	}
	if euid == 0 {
		return []string{system, userDir}
	}
	return []string{userDir, system}
}

// Socket path limits: sun_path is 104 bytes on macOS (xnu bsd/sys/un.h) and 108 on Linux, NUL
// included, so a path may have 103 or 107 bytes.
func maxSocketPath(goos string) int {
	if goos == "darwin" {
		return 103
	}
	return 107
}

// LongestSocketSuffix is the deepest socket below a session directory: <id>/vm/control.sock
// (host/vm puts QEMU's sockets in the session's vm directory).
const LongestSocketSuffix = "/vm/control.sock"

// CheckSocketPath reports, in one line with the fix, a unix socket path that does not fit
// sun_path on goos.
func CheckSocketPath(goos, path string) error {
	if n, limit := len(path), maxSocketPath(goos); n > limit {
		return fmt.Errorf("socket path %s is %d bytes, more than the %d a unix socket allows on %s; set %s to a shorter directory (e.g. /tmp/lm)", path, n, limit, goos, EnvRuntimeDir)
	}
	return nil
}

// LogDir is where session logs go: ~/Library/Logs/luksmount on macOS, $XDG_STATE_HOME/luksmount
// (default ~/.local/state/luksmount) elsewhere; under sudo, in the invoking user's home.
func LogDir() string {
	if d := os.Getenv(EnvLogDir); d != "" {
		return d
	}
	u := Invoker()
	home := u.Home
	if home == "" {
		home = os.TempDir()
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Logs", "luksmount")
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && !u.Sudo {
		return filepath.Join(x, "luksmount")
	}
	return filepath.Join(home, ".local", "state", "luksmount")
}

// LogPath is the log file of session id.
func LogPath(id string) string { return filepath.Join(LogDir(), id+".log") }

// Default returns the registry for this process.
func Default() *Registry {
	u := Invoker()
	return &Registry{Dirs: RuntimeDirs(), UID: u.ChownUID(), GID: u.GID}
}
