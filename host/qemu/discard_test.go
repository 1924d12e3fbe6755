package qemu

import (
	"strings"
	"testing"
)

func TestDiscardIsOptInAndNeverOnReadOnly(t *testing.T) {
	for _, tc := range []struct {
		disk Disk
		want int // nodes with discard=unmap
	}{
		{Disk{Path: "/tmp/a.img"}, 0},
		{Disk{Path: "/tmp/a.img", Discard: true}, 2},
		{Disk{Path: "/dev/sdb", HostDevice: true, Discard: true}, 2},
		{Disk{Path: "/tmp/a.img", Discard: true, ReadOnly: true}, 0},
	} {
		c := base(ArchAMD64, AccelTCG, "darwin")
		c.Disks = []Disk{tc.disk}
		args, err := c.Args()
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(strings.Join(args, " "), ",discard=unmap"); n != tc.want {
			t.Errorf("%+v: %d nodes with discard=unmap; want %d\n%q", tc.disk, n, tc.want, args)
		}
	}
}
