//go:build unix && !linux

package shmtable

import "errors"

// mincore is not used here: ReclaimDead then reads every page.
func mincore(b, vec []byte) error { return errors.ErrUnsupported }
