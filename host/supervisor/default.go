package supervisor

import (
	"github.com/luksmount/luksmount/host/blockdev"
	"github.com/luksmount/luksmount/host/session"
)

// Default returns the real collaborators for a session with options o.
func Default(o Options) Deps {
	return Deps{
		Open: func(target string, ro bool) (*blockdev.Device, error) {
			return blockdev.Open(target, blockdev.Options{ReadOnly: ro})
		},
		Boot:     Boot,
		Host:     NewHost(o.ReadOnly()),
		Registry: Registry(),
		LogPath:  session.LogPath,
	}
}

// Boot starts the VM for a session (replaceable in tests).
var Boot = bootVM

// Registry is the session registry with stale-session cleanup (CleanStale) wired in.
func Registry() *session.Registry {
	r := session.Default()
	r.OnStale = CleanStale
	return r
}
