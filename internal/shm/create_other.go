//go:build unix && !linux

package shm

import (
	"os"
)

// Create makes a temporary file of size bytes and removes its name:
// the open descriptor, and the mappings, keep it alive. Without memfd
// seals the size cannot be locked; the processes that map it are trusted
// not to truncate it.
func Create(name string, size int64) (*os.File, error) {
	f, err := os.CreateTemp("", "shipshape-"+name+"-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
