//go:build !linux

package agent

import "errors"

func statfsTotal(string) (int64, error) { return 0, errors.New("statfs: Linux only") }
