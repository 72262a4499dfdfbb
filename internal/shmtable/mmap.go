//go:build unix

package shmtable

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mmap maps size bytes of f shared, read-write.
func mmap(f *os.File, size int) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("shmtable: %w", err)
	}
	var mem []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		mem, merr = unix.Mmap(int(fd), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}); err != nil {
		return nil, fmt.Errorf("shmtable: %w", err)
	}
	if merr != nil {
		return nil, fmt.Errorf("shmtable: mmap: %w", merr)
	}
	return mem, nil
}
