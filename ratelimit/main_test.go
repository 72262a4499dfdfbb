package ratelimit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// memory store has no background goroutine, and the listener's are tied to
// connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
