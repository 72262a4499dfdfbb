package cluster

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const reuseportSupported = true

// reuseport is a net.ListenConfig.Control function that sets
// SO_REUSEPORT_LB: FreeBSD's plain SO_REUSEPORT lets several sockets bind a
// port but sends every connection to one of them; the _LB variant (FreeBSD
// 12+) balances connections like Linux's SO_REUSEPORT.
func reuseport(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT_LB, 1)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT_LB", serr)
}
