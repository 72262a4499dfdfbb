package cluster

import (
	"errors"
	"syscall"
)

// sysProcAttr puts a worker in its own process group (Ctrl-C reaches only
// the supervisor) and has the kernel SIGKILL it when the supervisor dies
// (procctl PROC_PDEATHSIG_CTL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// rssSupported is false: FreeBSD's procfs is usually not mounted; the
// memory cap applies through GOMEMLIMIT only.
const rssSupported = false

func rss(int) (int64, error) { return 0, errors.ErrUnsupported }
