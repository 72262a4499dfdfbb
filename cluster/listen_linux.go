package cluster

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const reuseportSupported = true

// reuseport is a net.ListenConfig.Control function that sets SO_REUSEPORT:
// since Linux 3.9 the kernel hashes each new connection to one of the
// sockets bound to the port by processes of the same effective user.
func reuseport(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
}
