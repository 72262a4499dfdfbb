package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Create makes a memfd of size bytes, sealed so that its size can no
// longer change: a process that maps it cannot shrink it under another's
// mapping (an access past the end would be SIGBUS in that process).
func Create(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate("shipshape-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ftruncate memfd: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:shipshape-"+name), nil
}
