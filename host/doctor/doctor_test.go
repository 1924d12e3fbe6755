package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/images"
	"github.com/luksmount/luksmount/host/vm"
)

// fixture is a machine on which every check passes; cases break one thing each.
func fixture(goos string) Env {
	qemuBin := "/opt/homebrew/bin/qemu-system-aarch64"
	arch := "arm64"
	if goos == "linux" {
		qemuBin, arch = "/usr/bin/qemu-system-x86_64", "amd64"
	}
	files := map[string]string{
		"/proc/filesystems": "nodev\tsysfs\n\text4\nnodev\tnfs\nnodev\tnfs4\n",
		"/etc/nfs.conf":     "# defaults\nnfs.client.mount.options = vers=3\n",
	}
	return Env{
		GOOS: goos, GOARCH: arch, Version: "1.0.0", Euid: 501, Executable: "/opt/homebrew/Cellar/luksmount/1.0.0/bin/luksmount",
		FindQEMU: func(name string) (string, error) {
			if !strings.HasSuffix(qemuBin, name) {
				return "", errors.New("wrong binary asked for: " + name)
			}
			return qemuBin, nil
		},
		Run: func(name string, args ...string) ([]byte, error) {
			switch {
			case name == qemuBin && len(args) == 1 && args[0] == "--version":
				return []byte("QEMU emulator version 9.1.0\nCopyright (c) 2003-2024 Fabrice Bellard\n"), nil
			case name == "codesign":
				return []byte("Executable=" + qemuBin + "\n[Dict]\n\t[Key] com.apple.security.hypervisor\n\t[Value]\n\t\t[Bool] true\n"), nil
			}
			return nil, errors.New("unexpected command " + name)
		},
		ReadFile: func(n string) ([]byte, error) {
			if s, ok := files[n]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		Stat: func(n string) (fs.FileInfo, error) {
			if n == "/sbin/mount_nfs" {
				return os.Stat("/")
			}
			return nil, fs.ErrNotExist
		},
		QEMUOwnership: func(n string) (vm.Ownership, error) {
			return vm.Ownership{QEMUPath: qemuBin, SelfPath: "/opt/homebrew/Cellar/luksmount/1.0.0/bin/luksmount", QEMUUID: 501, SelfUID: 501}, nil
		},
		Sysctl:        func(n string) (uint32, error) { return 1, nil },
		KVM:           func() error { return nil },
		RawDiskAccess: func() error { return nil },
		FindImages: func(a string) (string, string, error) {
			return "/opt/homebrew/Cellar/luksmount/1.0.0/share/luksmount/" + a, images.SourceInstalled, nil
		},
		VerifySums:  func(string) error { return nil },
		Writable:    func(string) error { return nil },
		RuntimeDirs: []string{"/tmp/luksmount-501", "/var/run/luksmount"},
		LogDir:      "/Users/me/Library/Logs/luksmount",
		Listen:      net.Listen,
	}
}

func find(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, r.Checks)
	return Check{}
}

func TestAllGood(t *testing.T) {
	for goos, want := range map[string]string{
		"darwin": "qemu qemu-owner accel qemu-signed images disk-access nfs.conf nfs-client dirs port",
		"linux":  "qemu qemu-owner accel images disk-access nfs-client dirs port",
	} {
		env := fixture(goos)
		env.Euid = 0
		r := Run(env)
		var names []string
		for _, c := range r.Checks {
			names = append(names, c.Name)
			if c.Status != OK {
				t.Errorf("%s: %s is %s: %s", goos, c.Name, c.Status, c.Message)
			}
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("%s checks: %s, want %s", goos, got, want)
		}
		if !r.OK {
			t.Errorf("%s: not OK", goos)
		}
	}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		goos   string
		name   string
		breaks func(e *Env)
		check  string
		status Status
		msg    string // in Message
		fix    string // in Fix
	}{
		{"darwin", "no qemu", func(e *Env) {
			e.FindQEMU = func(n string) (string, error) {
				return "", errors.New("QEMU not found: " + n + " is not in PATH; install it (brew install qemu)")
			}
		}, "qemu", Fail, "qemu-system-aarch64 is not in PATH", "brew install qemu"},
		{"linux", "no qemu", func(e *Env) {
			e.FindQEMU = func(n string) (string, error) { return "", errors.New("QEMU not found") }
		}, "qemu", Fail, "QEMU not found", "apt-get install qemu-system-x86"},
		{"linux", "old qemu", func(e *Env) {
			e.Run = func(string, ...string) ([]byte, error) {
				return []byte("QEMU emulator version 6.2.0 (Debian 1:6.2+dfsg-2ubuntu6)\n"), nil
			}
		}, "qemu", Fail, "QEMU 6.2.0; luksmount needs 7.2", "upgrade QEMU"},
		{"darwin", "old qemu", func(e *Env) {
			e.Run = func(string, ...string) ([]byte, error) { return []byte("QEMU emulator version 7.1.0\n"), nil }
		}, "qemu", Fail, "needs 9.1", "brew upgrade qemu"},
		// Linux's 7.2 is too old on macOS: the root supervisor starts QEMU with -run-with user=.
		{"darwin", "qemu without -run-with user=", func(e *Env) {
			e.Run = func(string, ...string) ([]byte, error) { return []byte("QEMU emulator version 9.0.2\n"), nil }
		}, "qemu", Fail, "QEMU 9.0.2; luksmount needs 9.1 or newer (it starts QEMU with -run-with user=", "brew upgrade qemu"},
		{"linux", "Debian 12's qemu", func(e *Env) {
			e.Run = func(string, ...string) ([]byte, error) {
				return []byte("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\n"), nil
			}
		}, "qemu", OK, "QEMU 7.2.19 (>= 7.2)", ""},
		{"linux", "odd version output", func(e *Env) {
			e.Run = func(string, ...string) ([]byte, error) { return []byte("qemu nightly\n"), nil }
		}, "qemu", Warn, "unrecognised --version output", ""},
		{"darwin", "qemu from another user", func(e *Env) {
			e.QEMUOwnership = func(string) (vm.Ownership, error) {
				return vm.Ownership{QEMUPath: "/opt/homebrew/bin/qemu-system-aarch64", SelfPath: "/usr/local/bin/luksmount", QEMUUID: 502, SelfUID: 501}, nil
			}
		}, "qemu-owner", Warn, "belongs to uid 502", "writable only by you or root"},
		{"darwin", "qemu writable by others", func(e *Env) {
			e.QEMUOwnership = func(string) (vm.Ownership, error) {
				return vm.Ownership{QEMUPath: "/opt/homebrew/bin/qemu-system-aarch64", QEMUUID: 501, SelfUID: 501, QEMUWritableByOthers: true}, nil
			}
		}, "qemu-owner", Warn, "chmod go-w", "writable only by you or root"},
		{"linux", "root's qemu, a user's luksmount", func(e *Env) {
			e.QEMUOwnership = func(string) (vm.Ownership, error) {
				return vm.Ownership{QEMUPath: "/usr/bin/qemu-system-x86_64", QEMUUID: 0, SelfUID: 1000}, nil
			}
		}, "qemu-owner", OK, "uid 0", ""},
		{"darwin", "no hvf", func(e *Env) { e.Sysctl = func(string) (uint32, error) { return 0, nil } }, "accel", Warn, "kern.hv_support is not 1", ""},
		{"darwin", "unsigned qemu", func(e *Env) {
			e.Run = func(n string, a ...string) ([]byte, error) {
				if n == "codesign" {
					return []byte("Executable=/opt/homebrew/bin/qemu-system-aarch64\n"), nil
				}
				return []byte("QEMU emulator version 9.1.0\n"), nil
			}
		}, "qemu-signed", Fail, "not signed with com.apple.security.hypervisor", "brew reinstall qemu"},
		{"linux", "kvm unusable", func(e *Env) {
			e.KVM = func() error { return errors.New("KVM_CREATE_VM on /dev/kvm: operation not supported") }
		}, "accel", Warn, "KVM not usable (KVM_CREATE_VM", "nested virtualisation"},
		{"darwin", "images missing", func(e *Env) {
			e.FindImages = func(a string) (string, string, error) {
				return "", "", &images.NotFoundError{Arch: a, Searched: []string{"/opt/homebrew/Cellar/luksmount/1.0.0/share/luksmount/arm64"}}
			}
		}, "images", Fail, "not found (looked in /opt/homebrew/Cellar/luksmount/1.0.0/share/luksmount/arm64)", "brew reinstall luksmount"},
		{"linux", "images damaged", func(e *Env) {
			e.VerifySums = func(string) error { return errors.New("guest image x/vmlinuz is damaged") }
		}, "images", Fail, "damaged", "make images"},
		{"darwin", "no full disk access", func(e *Env) {
			e.RawDiskAccess = func() error { return errors.New("opening /dev/rdisk0: operation not permitted") }
		}, "disk-access", Warn, "raw disks cannot be opened", "Full Disk Access"},
		{"linux", "not root", func(e *Env) { e.Euid = 1000 }, "disk-access", Warn, "block devices need sudo", "sudo"},
		{"darwin", "resvport in nfs.conf", func(e *Env) {
			e.ReadFile = func(string) ([]byte, error) { return []byte("nfs.client.mount.options = vers=3,resvport\n"), nil }
		}, "nfs.conf", Warn, "resvport", "remove resvport from nfs.client.mount.options"},
		{"darwin", "nobrowse in nfs.conf", func(e *Env) {
			e.ReadFile = func(string) ([]byte, error) { return []byte("nfs.client.mount.options=nobrowse\n"), nil }
		}, "nfs.conf", Warn, "hides the volume from Finder", "remove nobrowse"},
		{"darwin", "commented resvport", func(e *Env) {
			e.ReadFile = func(string) ([]byte, error) { return []byte("#nfs.client.mount.options = resvport\n"), nil }
		}, "nfs.conf", OK, "nothing that breaks", ""},
		{"darwin", "noresvport is fine", func(e *Env) {
			e.ReadFile = func(string) ([]byte, error) { return []byte("nfs.client.mount.options = noresvport\n"), nil }
		}, "nfs.conf", OK, "nothing that breaks", ""},
		{"darwin", "no nfs.conf", func(e *Env) {}, "nfs-client", OK, "/sbin/mount_nfs", ""},
		{"linux", "nfs loadable", func(e *Env) {
			e.ReadFile = func(string) ([]byte, error) { return []byte("nodev\tsysfs\n\text4\n"), nil }
			e.Run = func(n string, a ...string) ([]byte, error) {
				if n == "modprobe" {
					return nil, nil
				}
				return []byte("QEMU emulator version 7.2.22\n"), nil
			}
		}, "nfs-client", OK, "loadable", ""},
		{"linux", "no nfs client", func(e *Env) {
			e.ReadFile = func(string) ([]byte, error) { return []byte("nodev\tsysfs\n\text4\n"), nil }
			e.Run = func(n string, a ...string) ([]byte, error) {
				if n == "modprobe" {
					return []byte("modprobe: FATAL: Module nfs not found"), errors.New("exit status 1")
				}
				return []byte("QEMU emulator version 7.2.22\n"), nil
			}
		}, "nfs-client", Warn, "serves the export only", "--no-mount"},
		{"linux", "log dir unwritable", func(e *Env) {
			e.Writable = func(d string) error {
				if strings.Contains(d, "Logs") {
					return errors.New("permission denied")
				}
				return nil
			}
		}, "dirs", Fail, "cannot write /Users/me/Library/Logs/luksmount: permission denied", "LUKSMOUNT_LOG_DIR"},
		{"darwin", "no loopback", func(e *Env) {
			e.Listen = func(string, string) (net.Listener, error) { return nil, errors.New("can't assign requested address") }
		}, "port", Fail, "cannot listen on 127.0.0.1", "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.goos+"/"+tt.name, func(t *testing.T) {
			env := fixture(tt.goos)
			tt.breaks(&env)
			r := Run(env)
			c := find(t, r, tt.check)
			if c.Status != tt.status || !strings.Contains(c.Message, tt.msg) || !strings.Contains(c.Fix, tt.fix) {
				t.Errorf("%s = %s %q fix %q; want %s containing %q, fix containing %q", c.Name, c.Status, c.Message, c.Fix, tt.status, tt.msg, tt.fix)
			}
			if r.OK != (tt.status != Fail) {
				t.Errorf("report OK = %v with %s %s", r.OK, c.Name, c.Status)
			}
			if tt.status != OK && c.Fix == "" && tt.fix != "" {
				t.Error("no fix given")
			}
		})
	}
}

func TestNoQEMUSkipsDependentChecks(t *testing.T) {
	env := fixture("darwin")
	env.FindQEMU = func(string) (string, error) { return "", errors.New("not found") }
	r := Run(env)
	for _, c := range r.Checks {
		if c.Name == "qemu-owner" || c.Name == "qemu-signed" {
			t.Errorf("%s checked without a QEMU", c.Name)
		}
	}
	var text bytes.Buffer
	r.WriteText(&text)
	if !strings.Contains(text.String(), "fail  qemu") || !strings.Contains(text.String(), "fix: brew install qemu") || !strings.Contains(text.String(), "cannot mount here until qemu is fixed") {
		t.Errorf("text report:\n%s", text.String())
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := Run(fixture("linux")).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	img := find(t, r, "images")
	if img.Detail["source"] != images.SourceInstalled || !strings.HasSuffix(img.Detail["dir"], "share/luksmount/amd64") {
		t.Errorf("images detail %v", img.Detail)
	}
	if strings.Contains(b.String(), `\u003e`) {
		t.Error("JSON escapes >")
	}
}

func TestParseNFSConf(t *testing.T) {
	got := ParseNFSConf([]byte("nfs.client.mount.options = resvport\nnfs.client.mount.options = nobrowse, soft # later wins\nnfs.server.foo = 1\n"))
	if strings.Join(got, ",") != "nobrowse,soft" {
		t.Errorf("got %q", got)
	}
}

func TestParseQEMUVersion(t *testing.T) {
	for in, want := range map[string][3]int{
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n": {7, 2, 22},
		"QEMU emulator version 10.0.2\n":                                   {10, 0, 2},
		"QEMU emulator version 8.2\n":                                      {8, 2, 0},
	} {
		a, b, c, err := ParseQEMUVersion([]byte(in))
		if err != nil || [3]int{a, b, c} != want {
			t.Errorf("%q: %d.%d.%d %v", in, a, b, c, err)
		}
	}
}

func TestWritable(t *testing.T) {
	d := t.TempDir()
	if err := writable(d + "/not/yet/there"); err != nil {
		t.Errorf("a creatable directory: %v", err)
	}
	os.WriteFile(d+"/file", nil, 0o644)
	if err := writable(d + "/file"); err == nil {
		t.Error("a file passed as a directory")
	}
}
