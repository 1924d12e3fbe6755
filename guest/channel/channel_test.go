package channel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindPortInFakeSys(t *testing.T) {
	sys := t.TempDir()
	for dev, name := range map[string]string{"vport0p1": "org.qemu.guest_agent.0", "vport1p2": "org.luksmount.agent\n", "vport1p3": ""} {
		os.MkdirAll(filepath.Join(sys, dev), 0o755)
		os.WriteFile(filepath.Join(sys, dev, "name"), []byte(name), 0o644)
	}
	got, err := FindPort(sys, "org.luksmount.agent")
	if err != nil || got != "/dev/vport1p2" {
		t.Fatalf("FindPort = %q, %v; want /dev/vport1p2", got, err)
	}
	if _, err := FindPort(sys, "org.other"); !errors.Is(err, ErrNoPort) {
		t.Fatalf("FindPort(missing) = %v; want ErrNoPort", err)
	}
	if _, err := FindPort(filepath.Join(sys, "absent"), "x"); !errors.Is(err, ErrNoPort) {
		t.Fatalf("FindPort(no sys dir) = %v; want ErrNoPort", err)
	}
}
