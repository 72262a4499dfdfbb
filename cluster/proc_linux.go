package cluster

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts a worker in its own process group, so that Ctrl-C in a
// terminal reaches only the supervisor (which then drains the workers in
// order), and has the kernel SIGKILL it when the supervisor dies, however
// it dies. Go re-checks the parent after setting the signal, so a
// supervisor that dies during the fork is caught too.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

const rssSupported = true

// rss returns the resident set size of pid in bytes, from the second field
// of /proc/<pid>/statm (in pages).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, errors.New("cluster: malformed statm")
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}
