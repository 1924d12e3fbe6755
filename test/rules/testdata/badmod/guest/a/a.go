// Package a is a guest package that imports host/ (broken rule: guest/ never imports host/).
package a

import _ "example.com/bad/host/h"
