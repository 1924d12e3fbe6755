package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/doctor"
	"github.com/luksmount/luksmount/host/images"
)

func runDoctor(t *testing.T, env func() doctor.Env, args ...string) (int, string) {
	t.Helper()
	old := doctorEnv
	doctorEnv = env
	defer func() { doctorEnv = old }()
	var out, errb bytes.Buffer
	code := Run(append([]string{"luksmount", "doctor"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String() + errb.String()
}

func TestDoctorExitCodes(t *testing.T) {
	good := func() doctor.Env {
		e := doctor.Local()
		e.FindImages = func(a string) (string, string, error) {
			return "/prefix/share/luksmount/" + a, images.SourceInstalled, nil
		}
		e.VerifySums = func(string) error { return nil }
		e.FindQEMU = func(string) (string, error) { return "/usr/bin/qemu", nil }
		e.Run = func(string, ...string) ([]byte, error) { return []byte("QEMU emulator version 8.2.0\n"), nil }
		e.Writable = func(string) error { return nil }
		return e
	}
	if code, out := runDoctor(t, good); code != 0 || !strings.Contains(out, "luksmount can mount on this machine.") {
		t.Errorf("good machine: exit %d\n%s", code, out)
	}
	noQEMU := func() doctor.Env {
		e := good()
		e.FindQEMU = func(n string) (string, error) { return "", errors.New("QEMU not found: " + n + " is not in PATH") }
		return e
	}
	if code, out := runDoctor(t, noQEMU); code != ExitVM || !strings.Contains(out, "fix: "+doctor.FixQEMU(e().GOOS)) {
		t.Errorf("no QEMU: exit %d\n%s", code, out)
	}
	noImages := func() doctor.Env {
		e := good()
		e.FindImages = func(a string) (string, string, error) {
			return "", "", &images.NotFoundError{Arch: a, Searched: []string{"/x"}}
		}
		return e
	}
	code, out := runDoctor(t, noImages, "--json")
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != ExitVM || r.OK {
		t.Fatalf("no images --json: exit %d, %v\n%s", code, err, out)
	}
	for _, c := range r.Checks {
		if c.Name == "images" && (c.Status != doctor.Fail || c.Fix != images.Fix) {
			t.Errorf("images check %+v", c)
		}
	}
}

func e() doctor.Env { return doctor.Local() }
