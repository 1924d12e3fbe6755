package qemu

import (
	"errors"
	"strings"
	"testing"
)

const (
	cpuinfoPVM = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm\n\nprocessor\t: 1\nflags\t\t: fpu hypervisor\n"
	cpuinfoVMX = "processor\t: 0\nflags\t\t: fpu vme vmx ept\n"
	cpuinfoSVM = "processor\t: 0\nflags\t\t: fpu svm npt\n"
)

func probe(cpuinfo string, kvmErr, hvfErr error) hostProbe {
	return hostProbe{
		cpuinfo: func() ([]byte, error) { return []byte(cpuinfo), nil },
		kvm:     func() error { return kvmErr },
		hvf:     func() error { return hvfErr },
	}
}

func TestDetectAccel(t *testing.T) {
	noDev := errors.New("cannot open /dev/kvm: no such file or directory")
	tests := []struct {
		name         string
		goos, goarch string
		p            hostProbe
		want         Accel
	}{
		{"mac arm64", "darwin", "arm64", probe("", nil, nil), AccelHVF},
		{"mac amd64", "darwin", "amd64", probe("", nil, nil), AccelHVF},
		{"mac without hv_support", "darwin", "amd64", probe("", nil, errors.New("no")), AccelTCG},
		// /dev/kvm opens but the CPU has no vmx/svm (PVM-only nested host): must not pick kvm.
		{"linux pvm host", "linux", "amd64", probe(cpuinfoPVM, nil, nil), AccelTCG},
		{"linux vmx", "linux", "amd64", probe(cpuinfoVMX, nil, nil), AccelKVM},
		{"linux svm", "linux", "amd64", probe(cpuinfoSVM, nil, nil), AccelKVM},
		{"linux vmx without /dev/kvm", "linux", "amd64", probe(cpuinfoVMX, noDev, nil), AccelTCG},
		{"linux arm64 with kvm", "linux", "arm64", probe("", nil, nil), AccelKVM},
		{"linux arm64 without kvm", "linux", "arm64", probe("", noDev, nil), AccelTCG},
		{"freebsd", "freebsd", "amd64", probe(cpuinfoVMX, nil, nil), AccelTCG},
	}
	for _, tt := range tests {
		if got := detectAccel(tt.goos, tt.goarch, tt.p); got != tt.want {
			t.Errorf("%s: detectAccel = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCheckAccel(t *testing.T) {
	tests := []struct {
		name         string
		a            Accel
		goos, goarch string
		guest        Arch
		p            hostProbe
		want         string // "" = usable
	}{
		{"tcg always", AccelTCG, "linux", "amd64", ArchARM64, probe(cpuinfoPVM, nil, nil), ""},
		{"kvm on pvm host", AccelKVM, "linux", "amd64", ArchAMD64, probe(cpuinfoPVM, nil, nil), "no vmx or svm flag"},
		{"kvm cross arch", AccelKVM, "linux", "amd64", ArchARM64, probe(cpuinfoVMX, nil, nil), "cannot run an arm64 guest on an amd64 host"},
		{"kvm on mac", AccelKVM, "darwin", "arm64", ArchARM64, probe("", nil, nil), "kvm needs Linux"},
		{"hvf on linux", AccelHVF, "linux", "amd64", ArchAMD64, probe(cpuinfoVMX, nil, nil), "hvf needs macOS"},
		{"kvm broken dev", AccelKVM, "linux", "arm64", ArchARM64, probe("", errors.New("cannot open /dev/kvm: permission denied"), nil), "permission denied; use --accel tcg"},
		{"kvm ok", AccelKVM, "linux", "amd64", ArchAMD64, probe(cpuinfoVMX, nil, nil), ""},
		{"hvf ok", AccelHVF, "darwin", "arm64", ArchARM64, probe("", nil, nil), ""},
	}
	for _, tt := range tests {
		err := checkAccel(tt.a, tt.goos, tt.goarch, tt.guest, tt.p)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && err == nil:
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
		case tt.want != "" && (!strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrAccelUnavailable)):
			t.Errorf("%s: error %q, want ErrAccelUnavailable containing %q", tt.name, err, tt.want)
		}
	}
}

// On this kind of build machine (/dev/kvm present, no vmx/svm) the real probe must not choose kvm.
func TestDetectAccelLocal(t *testing.T) {
	a := DetectAccel("linux", "amd64")
	if localProbe.cpuinfo == nil {
		return
	}
	info, err := localProbe.cpuinfo()
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	if !hasVirtFlag(info) && a == AccelKVM {
		t.Errorf("DetectAccel chose kvm on a CPU without vmx/svm")
	}
	t.Logf("this machine: %s", a)
}
