package sentryreport_test

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

func TestMain(m *testing.M) {
	if os.Getenv(envCrashProgram) != "" {
		os.Exit(crashProgramMain()) // the program of the crash tests, crash_program_test.go
	}
	goleak.VerifyTestMain(m)
}

const (
	flushTimeout = 10 * time.Second
	msgPanic     = "panic recovered"
	testModule   = "github.com/shipshape-go/shipshape/sentryreport_test"
)

// newSentry returns a loopback Sentry server and a hub with a real client
// reporting to it.
func newSentry(t *testing.T, opts sentry.ClientOptions) (*sentrytest.Server, *sentry.Hub) {
	t.Helper()
	srv := sentrytest.NewServer(t)
	client := sentrytest.NewClient(t, srv.DSN(), opts)
	return srv, sentry.NewHub(client, sentry.NewScope())
}

// mustReporter is sentryreport.New for options that are valid.
func mustReporter(t testing.TB, opts ...sentryreport.Option) *sentryreport.Reporter {
	t.Helper()
	rep, err := sentryreport.New(opts...)
	require.NoError(t, err, "sentryreport.New")
	return rep
}

// recovering wraps h in recoverer, logging to logger and reporting to rep.
func recovering(t testing.TB, logger *slog.Logger, rep *sentryreport.Reporter, h http.Handler) http.Handler {
	t.Helper()
	mw, err := recoverer.New(recoverer.WithLogger(logger), recoverer.WithReporter(rep))
	require.NoError(t, err, "recoverer.New")
	return mw(h)
}

// withAccessLog wraps h in accesslog's middleware, writing to logger.
func withAccessLog(t testing.TB, logger *slog.Logger, h http.Handler) http.Handler {
	t.Helper()
	mw, err := accesslog.New(logger)
	require.NoError(t, err, "accesslog.New")
	return mw(h)
}

// hasFrame reports whether a Sentry stack trace has the frame of function
// in module.
func hasFrame(st *sentry.Stacktrace, module, function string) bool {
	if st == nil {
		return false
	}
	for _, f := range st.Frames {
		if f.Module == module && f.Function == function {
			return true
		}
	}
	return false
}

// logRecord is one captured slog record with its attributes as strings.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// captureHandler is a slog.Handler that keeps every record.
type captureHandler struct {
	mu      sync.Mutex
	records []logRecord
}

func newCapture() (*captureHandler, *slog.Logger) {
	h := &captureHandler{}
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
	srv := httptest.NewUnstartedServer(h)
	errLog := &syncBuffer{}
	srv.Config.ErrorLog = log.New(errLog, "", 0)
	srv.Start()
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
