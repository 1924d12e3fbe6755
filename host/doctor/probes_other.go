//go:build !linux && !darwin

package doctor

import "errors"

func sysctlUint32(string) (uint32, error) { return 0, errors.New("unsupported") }
func probeKVM() error                     { return errors.New("unsupported") }
func rawDiskAccess(string) error          { return nil }
