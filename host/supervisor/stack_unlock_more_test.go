package supervisor

import (
	"testing"

	"github.com/luksmount/luksmount/host/blockdev"
)

func TestGuestDevName(t *testing.T) {
	s := &sup{dev: &blockdev.Device{Path: "/img/a.img"}, stack: &stackInfo{members: []*blockdev.Device{{Path: "/img/b.img"}}}}
	for dev, want := range map[string]string{
		"/dev/vda": "/img/a.img", "/dev/vdb": "/img/b.img", "/dev/vdb2": "partition 2 of /img/b.img",
		"/dev/vdc": "/dev/vdc", "/dev/md0": "/dev/md0", "/dev/mapper/x": "/dev/mapper/x",
	} {
		if got := s.guestDevName(dev); got != want {
			t.Errorf("guestDevName(%s) = %q, want %q", dev, got, want)
		}
	}
}

func TestValidPIM(t *testing.T) {
	for p, want := range map[string]bool{"1": true, "485": true, "2147468": true, "": false, "12a": false, " 1": false, "12345678": false} {
		if validPIM([]byte(p)) != want {
			t.Errorf("validPIM(%q) = %v", p, !want)
		}
	}
}
