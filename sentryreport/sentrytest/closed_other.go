//go:build !unix

package sentrytest

import (
	"testing"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// closedPort returns a port of 127.0.0.1 that nothing listens on (it was
// free a moment ago).
func closedPort(tb testing.TB) int {
	tb.Helper()
	return testenv.FreePort(tb)
}
