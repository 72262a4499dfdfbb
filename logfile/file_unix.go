//go:build unix

package logfile

import (
	"os"
	"syscall"
)

// linkCount returns the number of names the file has: 0 once it was
// deleted while open.
func linkCount(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
