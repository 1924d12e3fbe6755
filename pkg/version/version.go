// Package version reports the luksmount version shared by the host CLI and the guest agent.
package version

import "runtime/debug"

// Version is stamped at build time with -ldflags "-X github.com/luksmount/luksmount/pkg/version.Version=...".
var Version = ""

// String returns the stamped version, else the module version or VCS revision, else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
