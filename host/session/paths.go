package session

import (
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
	if d := os.Getenv(EnvRuntimeDir); d != "" {
		return []string{d}
	}
	system := "/run/luksmount"
	if runtime.GOOS == "darwin" {
		system = "/var/run/luksmount"
	}
	u := Invoker()
	userDir := filepath.Join(os.TempDir(), "luksmount-"+strconv.Itoa(u.UID))
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && !u.Sudo && runtime.GOOS != "darwin" {
		userDir = filepath.Join(x, "luksmount")
	}
	if os.Geteuid() == 0 {
		return []string{system, userDir}
	}
	return []string{userDir, system}
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
