//go:build unix

package sentrytest

import (
	"syscall"
	"testing"
)

// closedPort returns a port of 127.0.0.1 that refuses connections until
// the test ends: a socket is bound to it but never listens. Holding it
// bound keeps the kernel from handing the port to a listener of the test
// (a free port closed again was, once, the test server's own port, which
// then received the SDK's envelopes).
func closedPort(tb testing.TB) int {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatalf("sentrytest: socket: %v", err)
	}
	syscall.CloseOnExec(fd)
	tb.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatalf("sentrytest: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatalf("sentrytest: getsockname: %v", err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
