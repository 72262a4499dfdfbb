//go:build !unix

package static

import "os"

// openNonblock is 0 where there is no FIFO for open to wait on, or no
// flag to stop it: Windows keeps named pipes out of the file system
// (under \\.\pipe\), and js, plan9 and wasip1 have no O_NONBLOCK in
// package syscall.
const openNonblock = 0

func setBlocking(*os.File) error { return nil }
