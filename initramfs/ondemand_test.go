package initramfs

import (
	"testing"

	"github.com/luksmount/luksmount/pkg/luksheader"
)

// Every kernel algorithm the header parser accepts must be in the agent image, or a drive the
// host lets through would fail in the guest.
func TestAgentShipsEveryAcceptedCryptoAlgorithm(t *testing.T) {
	od := Variants["agent"].OnDemand
	for _, alg := range luksheader.SupportedKernelAlgorithms() {
		if _, ok := od[alg]; !ok {
			t.Errorf("luksheader accepts %s but the agent image has no on-demand entry for it", alg)
		}
	}
}
