//go:build unix

package shmring

import "runtime"

const isLinux = runtime.GOOS == "linux"
