package redisstore

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child of TestCrossProcess: no leak check, it exits from the test.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// day is the window of the tests that count exactly: windows are aligned on
// the epoch of the Redis clock, and with W = 24h and limits ≤ 1000 a test
// that straddles a window boundary still admits exactly the limit (the
// previous window weighs (W−elapsed)/W, and limit·elapsed/W < 1 for the
// first 86 s of the new window).
const day = 24 * time.Hour

// newClient returns a go-redis client for addr, closed when the test ends.
func newClient(t testing.TB, addr string, mod ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr}
	for _, f := range mod {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// newStore returns a Store closed when the test ends.
func newStore(t testing.TB, c redis.UniversalClient, opts ...Option) *Store {
	t.Helper()
	s, err := New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// logBuffer is where a test's logger writes; count counts messages.
type logBuffer struct{ testenv.Buffer }

func (l *logBuffer) count(substr string) int { return strings.Count(l.String(), substr) }

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

const (
	msgDown = "redisstore: redis unavailable"
	msgUp   = "redisstore: redis available again"
)

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Context(t), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
