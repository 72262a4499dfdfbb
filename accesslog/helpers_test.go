package accesslog_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/accesslog"
)

func TestMain(m *testing.M) {
	// Every background goroutine (File's compressor, BufferedWriter's
	// flusher, ReopenOnSignal) must be gone when the tests end.
	goleak.VerifyTestMain(m)
}

// capture is a slog.Handler that keeps the records it gets, and sends them
// on ch when it is set.
type capture struct {
	mu   sync.Mutex
	recs []slog.Record
	ch   chan slog.Record
	err  error // returned by Handle
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }

func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r.Clone())
	ch, err := c.ch, c.err
	c.mu.Unlock()
	if ch != nil {
		ch <- r.Clone()
	}
	return err
}

func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

func (c *capture) records() []slog.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]slog.Record(nil), c.recs...)
}

// only returns the single record captured, failing the test otherwise.
func (c *capture) only(t *testing.T) slog.Record {
	t.Helper()
	recs := c.records()
	if len(recs) != 1 {
		t.Fatalf("captured %d records, want 1", len(recs))
	}
	return recs[0]
}

// attrMap returns the record's attributes by key, resolved, and fails on a
// repeated key.
func attrMap(t *testing.T, r slog.Record) map[string]slog.Value {
	t.Helper()
	m := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool {
		if _, dup := m[a.Key]; dup {
			t.Errorf("attribute %q appears twice", a.Key)
		}
		m[a.Key] = a.Value.Resolve()
		return true
	})
	return m
}

// attrKeys returns the keys in record order.
func attrKeys(r slog.Record) []string {
	var keys []string
	r.Attrs(func(a slog.Attr) bool {
		keys = append(keys, a.Key)
		return true
	})
	return keys
}

// mustNew is accesslog.New for options that are valid.
func mustNew(t testing.TB, logger *slog.Logger, opts ...accesslog.Option) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := accesslog.New(logger, opts...)
	require.NoError(t, err)
	return mw
}
