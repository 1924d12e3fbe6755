//go:build !linux && !darwin

package qemu

var localProbe = hostProbe{}
