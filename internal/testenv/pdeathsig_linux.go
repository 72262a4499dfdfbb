package testenv

import "syscall"

// setPdeathsig makes the kernel kill the child when the test binary dies,
// so a crashed test leaves no server behind.
func setPdeathsig(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
