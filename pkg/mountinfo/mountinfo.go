// Package mountinfo decodes fields of Linux's /proc/<pid>/mountinfo, read by the guest (is this
// path a filesystem root?) and by the Linux host (is our NFS mount still there?).
package mountinfo

import (
	"strconv"
	"strings"
)

// Unescape undoes the octal escapes the kernel writes for space, tab, newline and backslash in
// mount points and sources (\040, \011, \012, \134: fs/proc_namespace.c mangle()). A backslash
// not followed by three octal digits is kept as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
