package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/luksmount/luksmount/guest/blkid"
	"github.com/luksmount/luksmount/guest/cryptsetup"
	"github.com/luksmount/luksmount/guest/fsops"
	"github.com/luksmount/luksmount/pkg/control"
)

// Shutdown stops serving, syncs, unmounts and closes the mapping. Without req.Force a busy
// filesystem or mapping fails the shutdown (CodeDeviceBusy) and the VM stays up; with it, the
// filesystem is detached lazily after the retries. It does not power off: see Handle and PowerOff.
func (a *Agent) Shutdown(ctx context.Context, req control.ShutdownRequest) (control.ShutdownReply, error) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	var rep control.ShutdownReply
	step := func(name string, start float64, format string, args ...any) {
		rep.Steps = append(rep.Steps, a.tl.Step(name, start, format, args...))
	}
	a.mu.Lock()
	prev := a.state
	a.state = control.StateShuttingDown
	srv, stop, done := a.nfs, a.nfsStop, a.nfsDone
	a.nfs, a.nfsStop, a.nfsDone, a.serveAddr = nil, nil, nil, ""
	mountpoint, mapper := a.mountpoint, a.mapper
	a.mu.Unlock()

	if srv != nil {
		start := a.tl.Now()
		close(stop)
		srv.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			a.tl.Logf("warn", "NFS server did not stop within 5s; going on")
		}
		prev = control.StateMounted
		step("nfs-stop", start, "NFS server stopped")
	}

	start := a.tl.Now()
	a.deps.Sync()
	rep.Synced = true
	step("sync", start, "filesystems synced")

	if mountpoint != "" {
		start := a.tl.Now()
		err := a.retry("unmount "+mountpoint, func() error { return a.deps.Unmount(mountpoint, false) })
		if err != nil && req.Force {
			a.tl.Logf("warn", "filesystem still busy: detaching it lazily (forced)")
			err = a.deps.Unmount(mountpoint, true)
			if err == nil {
				a.deps.Sync()
			}
		}
		if err != nil {
			if !req.Force {
				a.setState(prev)
				return rep, control.Errorf(control.CodeDeviceBusy, "cannot unmount %s: %v; close what uses it and retry, or force the shutdown", mountpoint, err)
			}
			a.tl.Logf("error", "cannot unmount %s even lazily: %v", mountpoint, err)
		} else {
			rep.Unmounted = true
			a.mu.Lock()
			a.mountpoint, a.fstype, a.label, a.uuid = "", "", "", ""
			a.mu.Unlock()
			prev = control.StateUnlocked
			step("unmount", start, "%s unmounted", mountpoint)
		}
	} else {
		rep.Unmounted = true
	}

	if mapper != "" || len(a.stk.undo) > 0 {
		start := a.tl.Now()
		err := a.retry("close "+cryptsetup.MapperName, func() error { return a.closeStack(ctx) })
		if err != nil {
			if !req.Force {
				a.setState(prev)
				return rep, control.Errorf(control.CodeDeviceBusy, "cannot close the LUKS mapping: %v; retry, or force the shutdown", err)
			}
			a.tl.Logf("error", "cannot close the LUKS mapping: %v (forced: powering off anyway; data was synced)", err)
		} else {
			rep.Closed = true
			a.mu.Lock()
			a.mapper, a.detached = "", ""
			a.mu.Unlock()
			step("close", start, "LUKS mapping closed")
		}
	} else {
		rep.Closed = true
	}

	a.mu.Lock()
	a.device, a.readOnly = "", false
	if req.NoPowerOff && rep.Unmounted && rep.Closed {
		a.state = control.StateReady
	}
	a.mu.Unlock()
	return rep, nil
}

// retry runs fn, retrying with backoff while it reports busy.
func (a *Agent) retry(what string, fn func() error) error {
	err := fn()
	for _, d := range a.UnmountBackoff {
		if err == nil || !a.busy(err) {
			return err
		}
		a.tl.Logf("warn", "cannot %s: busy; retrying in %v", what, d)
		a.deps.Sleep(d)
		err = fn()
	}
	return err
}

func (a *Agent) busy(err error) bool {
	if a.deps.IsBusy != nil && a.deps.IsBusy(err) {
		return true
	}
	ce, ok := err.(*control.Error)
	return ok && ce.Code == control.CodeDeviceBusy
}

// powerOff stops the VM; it is called after the shutdown reply is written. It gives the host a
// moment to read the reply from QEMU's socket first.
func (a *Agent) powerOff() {
	a.mu.Lock()
	if a.powering {
		a.mu.Unlock()
		return
	}
	a.powering = true
	a.mu.Unlock()
	a.tl.Logf("info", "powering off")
	a.deps.Sleep(100 * time.Millisecond)
	if err := a.deps.PowerOff(); err != nil {
		a.tl.Logf("error", "%v", err)
	}
}

// ShutdownAndPowerOff is the path for SIGTERM, the power button and the watchdog: nobody is
// waiting for a reply. force is for when no host can be asked what to do about a busy filesystem.
func (a *Agent) ShutdownAndPowerOff(why string, force bool) {
	a.tl.Logf("info", "%s: shutting down", why)
	if _, err := a.Shutdown(context.Background(), control.ShutdownRequest{Force: force}); err != nil {
		a.tl.Logf("error", "shutdown: %v; staying up", err)
		return
	}
	a.powerOff()
}

func (a *Agent) format(ctx context.Context, r *control.Request) (any, error) {
	var req control.FormatRequest
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	encrypted := req.Type != "none"
	if encrypted {
		if _, err := cryptsetup.FormatArgs("/dev/null", req); err != nil {
			return nil, err // validate before touching the disk
		}
	}
	if _, err := fsops.MkfsCmd(req.FS, "/dev/null", req.Label); err != nil {
		return nil, err
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	if st := a.State(); st != control.StateReady {
		return nil, a.badState("cannot format: a device is unlocked or mounted")
	}
	dev, _, err := a.pickDevice(ctx, req.Device, nil, control.CodeNotFound, "")
	if err != nil {
		return nil, err
	}
	start := a.tl.Now()
	var rep control.FormatReply
	rep.Label = req.Label
	target := dev
	if encrypted {
		if err := a.formatCiphers(req); err != nil {
			return nil, err
		}
		p := a.startProgress("format", fmt.Sprintf("creating a %s container on %s (benchmarks the key derivation)", req.Type, dev))
		err = a.crypt.Format(ctx, dev, req, r.Secret)
		p.stop()
		if err != nil {
			return nil, err
		}
		p = a.startProgress("format", "opening the new container (deriving the key)")
		err = a.crypt.Open(ctx, dev, false, r.Secret, true)
		p.stop()
		if err != nil {
			return nil, err
		}
		target = cryptsetup.MapperPath
		defer func() {
			if err := a.crypt.Close(ctx); err != nil {
				a.tl.Logf("error", "cannot close the new mapping: %v", err)
			}
		}()
	}
	err = a.mkfs(ctx, req, target)
	if err != nil {
		return nil, err
	}
	a.deps.Sync()
	if in, err := blkid.Probe(ctx, a.deps.Run, target); err == nil {
		rep.FSUUID = in.UUID
	}
	if encrypted {
		if in, err := blkid.Probe(ctx, a.deps.Run, dev); err == nil {
			rep.LUKSUUID = in.UUID
		}
	}
	what := fsName(req.FS)
	if encrypted {
		what = fmt.Sprintf("%s + %s", req.Type, what)
	}
	a.tl.Step("format", start, "%s created on %s", what, dev)
	return rep, nil
}
