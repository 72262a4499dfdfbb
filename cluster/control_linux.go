package cluster

import (
	"net"

	"golang.org/x/sys/unix"
)

const peerCredSupported = true

// peerCred returns the user and process ids of the process that
// connected conn (SO_PEERCRED: the credentials at connect time, which the
// peer cannot forge).
func peerCred(conn *net.UnixConn) (uid, pid int, err error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, 0, err
	}
	if cerr != nil {
		return -1, 0, cerr
	}
	return int(cred.Uid), int(cred.Pid), nil
}
