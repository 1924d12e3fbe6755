package supervisor

import (
	"context"
	"fmt"
	"runtime"

	"github.com/luksmount/luksmount/host/qemu"
	"github.com/luksmount/luksmount/host/timelog"
	"github.com/luksmount/luksmount/pkg/version"
)

// The steps every VM the supervisor runs goes through (a session, Format, and whatever else
// boots the drive's VM): size it, open the log, boot, wait for the agent's Hello, power off.

// vmSize is how big the VM is, and the key derivation memory it was sized for.
type vmSize struct {
	KDFMiB    int64
	MemoryMiB int
	CPUs      int
}

// sizeForMount sizes a VM that unlocks a keyslot needing kdfMiB and lanes argon2 lanes (0, 0:
// not encrypted, or pbkdf2); memMiB and cpus are the user's overrides (0 = sized here: see
// sizing.go).
func sizeForMount(kdfMiB int64, lanes, memMiB, cpus int) vmSize {
	return sized(kdfMiB, qemu.MemoryForKDF(kdfMiB), memMiB, cpus, CPUsForKDF(lanes, runtime.NumCPU()))
}

// sizeForFormat sizes a VM that creates a keyslot of kdfMiB.
func sizeForFormat(kdfMiB int64, memMiB, cpus int) vmSize {
	return sized(kdfMiB, qemu.MemoryForFormat(kdfMiB), memMiB, cpus, 2)
}

func sized(kdfMiB int64, mem, memOpt, cpusOpt, defCPUs int) vmSize {
	if memOpt > 0 {
		mem = memOpt
	}
	if cpusOpt <= 0 {
		cpusOpt = defCPUs
	}
	return vmSize{KDFMiB: kdfMiB, MemoryMiB: mem, CPUs: cpusOpt}
}

// openLog opens the log at path (chowned to uid:gid unless uid is -1); without one the steps
// still run, logging nowhere, and the user is told. It reports whether the file opened.
func (s *sup) openLog(path string, uid, gid int) bool {
	l, err := timelog.Open(path, uid, gid)
	if err != nil {
		s.log = timelog.New(discard{})
		s.progress("warning: no session log: %v", err)
		return false
	}
	s.log = l
	return true
}

// bootSpec is the VM for s.dev at size, with its sockets in dir and its console next to logPath.
func (s *sup) bootSpec(size vmSize, dir, logPath string) BootSpec {
	return BootSpec{
		Device: s.dev, MemoryMiB: size.MemoryMiB, CPUs: size.CPUs, Accel: s.opts.Accel, Discard: s.opts.Discard, Members: s.members(), Header: s.header,
		SessionDir: dir, OnEvent: s.onEvent, OnQMPEvent: s.onQMPEvent, ConsoleLog: consoleLogFor(logPath),
		Logf: func(format string, args ...any) { s.log.Note(timelog.Host, format, args...) },
	}
}

type booted struct {
	m   Machine
	err error // matches ErrBoot
}

// startBoot boots the VM in the background; the result arrives on the channel.
func (s *sup) startBoot(ctx context.Context, spec BootSpec) <-chan booted {
	s.booted = bootRecord{console: spec.ConsoleLog, memoryMiB: spec.MemoryMiB}
	ch := make(chan booted, 1)
	go func() {
		m, err := s.deps.Boot(ctx, spec)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrBoot, err)
		}
		ch <- booted{m, err}
	}()
	return ch
}

// hello waits for the agent's Hello on s.vm and ends the boot step t with what it says.
func (s *sup) hello(ctx context.Context, t *timelog.Timer) error {
	hctx, cancel := context.WithTimeout(ctx, stepTimeout)
	hello, err := s.vm.Control().Hello(hctx, version.String())
	cancel()
	if err != nil {
		if lm := s.unpackError(); lm != nil {
			return t.Done(lm, "")
		}
		return t.Done(fmt.Errorf("%w: the guest agent did not answer: %w", ErrBoot, err), "")
	}
	lm := s.unpackError()
	t.Done(lm, "qemu pid %d, kernel %s, agent %s", s.vm.Pid(), hello.Kernel, hello.AgentVersion)
	for _, ev := range hello.Timeline {
		s.log.Guest(ev)
	}
	return lm
}

// bootAndHello boots the VM for s.dev at size (sockets in dir, console next to logPath) and waits
// for the agent's Hello. Once it returns, s.vm may be set even on error: power it off.
func (s *sup) bootAndHello(ctx context.Context, size vmSize, dir, logPath string) error {
	s.progress("booting VM (%d MiB)...", size.MemoryMiB)
	t := s.log.Start("boot VM")
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	b := <-s.startBoot(bctx, s.bootSpec(size, dir, logPath))
	cancel()
	if b.err != nil {
		return t.Done(b.err, "")
	}
	s.setVM(b.m)
	if err := s.hello(ctx, t); err != nil {
		return err
	}
	s.progress("booted in %s", timelog.FormatDuration(t.Elapsed()))
	return nil
}
