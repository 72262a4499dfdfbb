//go:build unix && !linux && !freebsd

package cluster

import (
	"errors"
	"syscall"
)

// sysProcAttr puts a worker in its own process group (Ctrl-C reaches only
// the supervisor). There is no parent-death signal here; the lifeline pipe
// makes a worker drain and stop when the supervisor is gone.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// rssSupported is false: there is no /proc to sample; the memory cap
// applies through GOMEMLIMIT only.
const rssSupported = false

func rss(int) (int64, error) { return 0, errors.ErrUnsupported }
