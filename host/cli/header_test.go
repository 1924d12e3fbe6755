package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luksmount/luksmount/host/supervisor"
)

func TestHeaderFlag(t *testing.T) {
	isolate(t)
	var got supervisor.Options
	app := mountOptionsApp(&got)
	wd, _ := os.Getwd()
	// After the target too (reorder knows --header takes a value).
	if err := app.Run(reorder(app, []string{"luksmount", "./data.img", "--header", "./hdr.img", "--no-mount"})); err != nil {
		t.Fatal(err)
	}
	if got.Header != filepath.Join(wd, "hdr.img") || got.Target != filepath.Join(wd, "data.img") || !got.NoMount {
		t.Fatalf("options %+v", got)
	}
	got = supervisor.Options{}
	if err := app.Run(reorder(app, []string{"luksmount", "mount", "--header=/h", "/d"})); err != nil || got.Header != "/h" {
		t.Fatalf("options %+v, %v", got, err)
	}
	// A disk name stays a disk name (blockdev resolves disk5s1 to /dev/rdisk5s1 on macOS).
	got = supervisor.Options{}
	if err := app.Run(reorder(app, []string{"luksmount", "--header", "disk5s1", "/d"})); err != nil || got.Header != "disk5s1" {
		t.Fatalf("options %+v, %v", got, err)
	}
	err := app.Run(reorder(app, []string{"luksmount", "--header=", "/d"}))
	if err == nil || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--header needs a FILE") {
		t.Fatalf("empty --header: %v", err)
	}
}

// The exit codes of the --header failures the supervisor reports (header_test.go there).
func TestHeaderExitCodes(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	os.WriteFile(img, bytes.Repeat([]byte{0x5c}, 1<<20), 0o600)
	notLUKS := filepath.Join(dir, "h.img")
	os.WriteFile(notLUKS, bytes.Repeat([]byte{0x11}, 1<<20), 0o600)
	for _, tc := range []struct {
		header string
		code   int
		want   string
	}{
		{filepath.Join(dir, "missing.img"), ExitNotFound, "does not exist"},
		{notLUKS, ExitFilesystem, "is not a LUKS header"},
	} {
		code, _, stderr := run(t, "pw\n", "--foreground", "--no-mount", "--header", tc.header, img)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("--header %s: exit %d, stderr %q; want %d and %q", tc.header, code, stderr, tc.code, tc.want)
		}
	}
}
