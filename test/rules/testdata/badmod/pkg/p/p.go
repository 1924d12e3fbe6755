// Package p is shared code that imports guest/ (broken rule: pkg/ never imports guest/).
package p

import _ "example.com/bad/guest/t"
