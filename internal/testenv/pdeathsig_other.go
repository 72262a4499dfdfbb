//go:build unix && !linux

package testenv

import "syscall"

// setPdeathsig is a no-op where there is no parent-death signal: the
// test's cleanup kills the process group.
func setPdeathsig(*syscall.SysProcAttr) {}
