//go:build !linux

// Package guestinit is what both benchmark inits do around their job; it only runs in the Linux
// guest.
package guestinit
