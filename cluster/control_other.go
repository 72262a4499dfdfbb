//go:build unix && !linux

package cluster

import (
	"errors"
	"net"
)

// peerCredSupported is false: the peer check is implemented for Linux's
// SO_PEERCRED only, and the control socket is not opened without it.
const peerCredSupported = false

func peerCred(*net.UnixConn) (int, int, error) { return -1, 0, errors.ErrUnsupported }
