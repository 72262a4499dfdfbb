//go:build unix && !linux

package cluster

import "os"

// oomProbe tells OOM kills apart on Linux only: elsewhere there is no
// memory cgroup to read, and a SIGKILL is reported as a signal.
type oomProbe struct{}

func startOOMProbe(int) oomProbe { return oomProbe{} }

func (oomProbe) evidence(int) string { return "" }

// growPipe does nothing: only Linux lets a pipe grow.
func growPipe(*os.File, int) {}
