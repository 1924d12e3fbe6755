package supervisor

import (
	"context"
	"errors"

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
		Registry: session.Default(),
		LogPath:  session.LogPath,
	}
}

// Boot starts the VM for a session. It is host/vm's job; until that lands it fails clearly.
var Boot = func(ctx context.Context, spec BootSpec) (Machine, error) {
	return nil, errors.New("this build has no VM layer (host/vm)")
}
