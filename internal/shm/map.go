//go:build unix

package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Map maps size bytes of f shared, read-write.
func Map(f *os.File, size int) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	var mem []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		mem, merr = unix.Mmap(int(fd), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}); err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	if merr != nil {
		return nil, fmt.Errorf("shm: mmap: %w", merr)
	}
	return mem, nil
}
