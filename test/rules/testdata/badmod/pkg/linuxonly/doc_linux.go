// Package linuxonly documents itself only in a linux file, so darwin builds have no doc.
package linuxonly
