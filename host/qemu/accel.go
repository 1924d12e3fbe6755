package qemu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrAccelUnavailable is wrapped when an accelerator cannot run on this machine.
var ErrAccelUnavailable = errors.New("accelerator unavailable")

// hostProbe is what accelerator detection needs to know about the machine; tests fake it.
type hostProbe struct {
	cpuinfo func() ([]byte, error) // /proc/cpuinfo (linux)
	kvm     func() error           // opens /dev/kvm and checks KVM_GET_API_VERSION (linux)
	hvf     func() error           // kern.hv_support (darwin)
}

// DetectAccel picks the fastest accelerator that truly works for a guest of the host's own
// architecture (goarch) on goos: hvf on macOS, kvm on Linux when the CPU virtualises (a /dev/kvm
// that opens is not enough: nested PVM hosts have one that cannot run stock kernels), else tcg.
func DetectAccel(goos, goarch string) Accel {
	return detectAccel(goos, goarch, localProbe)
}

func detectAccel(goos, goarch string, p hostProbe) Accel {
	for _, a := range []Accel{AccelHVF, AccelKVM} {
		if checkAccel(a, goos, goarch, Arch(goarch), p) == nil {
			return a
		}
	}
	return AccelTCG
}

// CheckAccel says why a (typically the user's explicit choice) cannot run a guest of arch on this
// machine (goos/goarch), or nil if it can.
func CheckAccel(a Accel, goos, goarch string, guest Arch) error {
	return checkAccel(a, goos, goarch, guest, localProbe)
}

func checkAccel(a Accel, goos, goarch string, guest Arch, p hostProbe) error {
	if a == AccelTCG {
		return nil
	}
	if a != AccelHVF && a != AccelKVM {
		return fmt.Errorf("%w: unknown accelerator %q; use hvf, kvm or tcg", ErrInvalidConfig, a)
	}
	if string(guest) != goarch {
		return fmt.Errorf("%w: %s cannot run an %s guest on an %s host; use --accel tcg", ErrAccelUnavailable, a, guest, goarch)
	}
	switch a {
	case AccelHVF:
		if goos != "darwin" {
			return fmt.Errorf("%w: hvf needs macOS; use --accel kvm or tcg", ErrAccelUnavailable)
		}
		if p.hvf == nil {
			return fmt.Errorf("%w: hvf cannot be checked on this build", ErrAccelUnavailable)
		}
		if err := p.hvf(); err != nil {
			return fmt.Errorf("%w: hvf: %w; use --accel tcg", ErrAccelUnavailable, err)
		}
		return nil
	default: // kvm
		if goos != "linux" {
			return fmt.Errorf("%w: kvm needs Linux; use --accel hvf or tcg", ErrAccelUnavailable)
		}
		if goarch == "amd64" {
			if p.cpuinfo == nil {
				return fmt.Errorf("%w: kvm: cannot read CPU flags", ErrAccelUnavailable)
			}
			info, err := p.cpuinfo()
			if err != nil {
				return fmt.Errorf("%w: kvm: cannot read /proc/cpuinfo: %w", ErrAccelUnavailable, err)
			}
			if !hasVirtFlag(info) {
				return fmt.Errorf("%w: kvm: the CPU has no vmx or svm flag (a nested VM without hardware virtualisation); use --accel tcg", ErrAccelUnavailable)
			}
		}
		if p.kvm == nil {
			return fmt.Errorf("%w: kvm cannot be checked on this build", ErrAccelUnavailable)
		}
		if err := p.kvm(); err != nil {
			return fmt.Errorf("%w: kvm: %w; use --accel tcg", ErrAccelUnavailable, err)
		}
		return nil
	}
}

// hasVirtFlag reports whether an x86 /proc/cpuinfo lists vmx (Intel VT-x) or svm (AMD-V).
func hasVirtFlag(cpuinfo []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, f := range strings.Fields(val) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}
