// Package h is a host package.
package h
