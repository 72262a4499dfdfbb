package shmtable

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mincore sets vec[i]&1 for each page of b in memory (mincore(2)).
func mincore(b, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return e
	}
	return nil
}
