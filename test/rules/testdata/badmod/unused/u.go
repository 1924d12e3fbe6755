// Package unused is required by the fixture's go.mod but imported by nothing (go.mod untidy).
package unused
