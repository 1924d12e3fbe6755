package guestspec

import (
	"strings"
	"testing"
)

func TestMountData(t *testing.T) {
	c := Config{Server: "10.0.2.2", NFSPort: 40001, MountPort: 40002, MountOptions: "rsize=1048576,wsize=1048576"}
	got := c.MountData()
	for _, want := range []string{"vers=3", "proto=tcp", "port=40001", "mountport=40002", "nolock", "addr=10.0.2.2", "mountaddr=10.0.2.2", "rsize=1048576"} {
		if !strings.Contains(got, want) {
			t.Errorf("MountData() = %q; missing %q", got, want)
		}
	}
}
