//go:build !unix

package cluster

import (
	"fmt"
	"log/slog"
	"os"
)

// limitsProgram: there is no supervisor here.
func limitsProgram(*slog.Logger) int {
	fmt.Fprintln(os.Stderr, "test program: no shared limits on this system")
	return 2
}
