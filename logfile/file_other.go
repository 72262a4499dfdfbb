//go:build !unix

package logfile

import "os"

// linkCount does not know the link count here (an open file cannot be
// deleted on Windows): a file gone from its path counts as moved.
func linkCount(os.FileInfo) (uint64, bool) { return 0, false }
