package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

// Listen announces on the local network address like net.Listen, with
// SO_REUSEPORT set (SO_REUSEPORT_LB on FreeBSD) so that several independent
// processes (copies started by systemd, a container runtime or a shell) can
// listen on the same port and the kernel spreads new connections between
// them. network must be "tcp", "tcp4" or "tcp6" (any other, or a nil ctx,
// is an error).
//
// On Linux only processes with the same effective user id can join a port's
// group, so another user's process cannot steal the traffic. Every process
// must set the option: a plain net.Listen on the port fails with "address
// already in use", and so does Listen while a plain listener holds it.
//
// Each process has its own accept queue: when one of them closes its
// listener (a restart, say), the connections already queued on it are
// reset, unless net.ipv4.tcp_migrate_req=1 (Linux 5.14+) lets the kernel
// move them to another listener of the group. The supervisor of [Serve]
// and [Run] avoids this by sharing one socket instead.
//
// In a worker started by [Run] or [Serve] on TCP, Listen for the
// supervisor's port (whatever the host part) returns a new listener on the
// socket the supervisor handed down instead of opening another one; other
// addresses are opened as above.
//
// macOS, Windows and other systems cannot balance connections between
// listeners this way; there Listen returns an error wrapping
// [errors.ErrUnsupported] (use [Run], which shares one socket instead, or
// a single process).
func Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	if ctx == nil {
		return nil, errors.New("cluster: Listen: nil context")
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("cluster: Listen: network %q, want tcp, tcp4 or tcp6", network)
	}
	if ln, ok, err := inheritedListener(network, addr); ok || err != nil {
		return ln, err
	}
	if !reuseportSupported {
		return nil, fmt.Errorf("cluster: Listen: no load-balancing SO_REUSEPORT on %s: %w", runtime.GOOS, errors.ErrUnsupported)
	}
	lc := net.ListenConfig{Control: reuseport}
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return ln, nil
}
