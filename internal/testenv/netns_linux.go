package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialInNetns returns a DialContext for http.Transport and net.Dialer
// users that opens its connections inside the network namespace of the
// process pid (a container's, say), so that a test reaches a server that
// listens on that namespace's loopback only, as it is configured, without
// publishing a port. The connection keeps working from any goroutine once
// made: a socket stays in the namespace it was created in.
func DialInNetns(pid int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		res := make(chan result, 1)
		go func() {
			// The thread switches namespaces: nothing else may run on it
			// until it is back. If it cannot switch back, the goroutine
			// ends still locked, and the runtime ends the thread with it.
			runtime.LockOSThread()
			conn, back, err := dialFromNetns(ctx, pid, network, addr)
			if back {
				runtime.UnlockOSThread()
			}
			res <- result{conn, err}
		}()
		r := <-res
		return r.conn, r.err
	}
}

func dialFromNetns(ctx context.Context, pid int, network, addr string) (conn net.Conn, back bool, err error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, fmt.Errorf("testenv: %w", err)
	}
	defer self.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, true, fmt.Errorf("testenv: network namespace of %d: %w", pid, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("testenv: setns into %d: %w", pid, err)
	}
	var d net.Dialer
	conn, err = d.DialContext(ctx, network, addr)
	back = unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil
	return conn, back, err
}
