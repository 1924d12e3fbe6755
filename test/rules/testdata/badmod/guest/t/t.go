// Package t pulls "testing" into the agent binary (broken rule: the agent links no testing).
package t

import _ "testing"
