//go:build !linux && !freebsd

package cluster

import (
	"errors"
	"syscall"
)

// reuseportSupported is false where SO_REUSEPORT does not balance new
// connections between the listening sockets: on macOS and the other BSDs
// the option lets several sockets bind a port but one of them gets every
// connection, and Windows has no equivalent.
const reuseportSupported = false

func reuseport(_, _ string, _ syscall.RawConn) error { return errors.ErrUnsupported }
