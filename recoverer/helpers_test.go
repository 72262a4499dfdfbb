package recoverer_test

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/recoverer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logRecord is one captured slog record with its attributes as strings.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// captureHandler is a slog.Handler that keeps every record; notify gets a
// value per record, for tests that wait for a goroutine's report.
type captureHandler struct {
	mu      sync.Mutex
	records []logRecord
	notify  chan struct{}
}

func newCapture() (*captureHandler, *slog.Logger) {
	h := &captureHandler{notify: make(chan struct{}, 4096)}
	return h, slog.New(h)
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	select {
	case h.notify <- struct{}{}:
	default:
	}
	return nil
}

func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

// withMsg returns the records with message msg.
func (h *captureHandler) withMsg(msg string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range h.records {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

func (h *captureHandler) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), h.records...)
}

// syncBuffer is a bytes.Buffer safe for the server's error log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newServer starts h on loopback with net/http's own error log captured, so
// that tests can assert that net/http logged no panic of its own.
func newServer(t *testing.T, h http.Handler) (*httptest.Server, *syncBuffer) {
	t.Helper()
	return startServer(t, h, false)
}

// startServer is newServer, over TLS with HTTP/2 when h2 is true.
func startServer(t *testing.T, h http.Handler, h2 bool) (*httptest.Server, *syncBuffer) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	errLog := &syncBuffer{}
	srv.Config.ErrorLog = log.New(errLog, "", 0)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, errLog
}

// panicNow is the frame the tests look for in stacks.
//
//go:noinline
func panicNow(v any) {
	panic(v)
}

// panicWith returns a handler that panics with v through panicNow.
func panicWith(v any) http.HandlerFunc {
	return func(http.ResponseWriter, *http.Request) { panicNow(v) }
}

const msgPanic = "panic recovered"

// mustNew is recoverer.New for options that are valid.
func mustNew(t testing.TB, opts ...recoverer.Option) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := recoverer.New(opts...)
	require.NoError(t, err, "recoverer.New")
	return mw
}

// withAccessLog wraps h in accesslog's middleware, writing to logger.
func withAccessLog(t testing.TB, logger *slog.Logger, h http.Handler) http.Handler {
	t.Helper()
	mw, err := accesslog.New(logger)
	require.NoError(t, err, "accesslog.New")
	return mw(h)
}

// recordingReporter is a Reporter that keeps what recoverer gives it and
// answers with id.
type recordingReporter struct {
	id string

	mu     sync.Mutex
	panics []recoverer.Panic
	ctxs   []context.Context
}

func (rr *recordingReporter) ReportPanic(ctx context.Context, p recoverer.Panic) string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.panics = append(rr.panics, p)
	rr.ctxs = append(rr.ctxs, ctx)
	return rr.id
}

func (rr *recordingReporter) reported() []recoverer.Panic {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]recoverer.Panic(nil), rr.panics...)
}
