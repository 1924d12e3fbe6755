//go:build !linux

// Package guestkit is what the PID 1 of every helper VM does around its job; it is Linux-only.
package guestkit
