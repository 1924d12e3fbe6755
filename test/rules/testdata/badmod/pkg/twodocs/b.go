// Package twodocs ...and another here.
package twodocs
