//go:build unix

package static

import (
	"os"
	"syscall"
)

// openNonblock keeps open(2) from waiting: for a FIFO until a writer
// shows up, for some devices until they are ready.
const openNonblock = syscall.O_NONBLOCK

// setBlocking clears O_NONBLOCK on a regular file opened with
// openNonblock. Local file systems ignore the flag for regular files, but
// FUSE and network file systems may honour it, and a read or sendfile
// that returned EAGAIN would fail: the descriptor is not in the poller.
func setBlocking(f *os.File) error {
	// Fd has no side effect here: the File was opened non-blocking by
	// us, not put into non-blocking mode by the runtime.
	return syscall.SetNonblock(int(f.Fd()), false)
}
