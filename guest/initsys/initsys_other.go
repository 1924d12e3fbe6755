//go:build !linux

package initsys

import (
	"context"
	"os"
	"sync"
)

// MountBase is Linux-only.
func MountBase() error { return ErrUnsupported }

// LoadModules is Linux-only.
func LoadModules(paths []string) []ModuleResult {
	out := make([]ModuleResult, len(paths))
	for i, p := range paths {
		out[i] = ModuleResult{Path: p, Err: ErrUnsupported}
	}
	return out
}

// Reaper is Linux-only; here it does nothing.
type Reaper struct {
	Guard sync.RWMutex
}

// Start does nothing outside Linux.
func (r *Reaper) Start(ctx context.Context) {}

// ShutdownSignals never fires outside Linux.
func ShutdownSignals() <-chan os.Signal { return make(chan os.Signal) }

// WatchPowerButton watches nothing outside Linux.
func WatchPowerButton(fn func()) int { return 0 }

// Kernel is unknown outside Linux.
func Kernel() string { return "" }

// Sync does nothing outside Linux.
func Sync() {}

// PowerOff is Linux-only.
func PowerOff() error { return ErrUnsupported }

// LoadModulesParallel is Linux-only.
func LoadModulesParallel(mods []Module) []ModuleResult {
	out := make([]ModuleResult, len(mods))
	for i, m := range mods {
		out[i] = ModuleResult{Path: m.Path, Err: ErrUnsupported}
	}
	return out
}
