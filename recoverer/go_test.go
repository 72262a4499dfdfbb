package recoverer_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/recoverer"
)

const msgPanicGoroutine = "panic recovered in goroutine"

// waitRecord waits for the next record, bounded so that a missing report
// fails instead of hanging.
func waitRecord(t *testing.T, c *captureHandler) {
	t.Helper()
	select {
	case <-c.notify:
	case <-time.After(10 * time.Second):
		t.Fatal("no record 10s after the goroutine panicked")
	}
}

// mustNewGo is recoverer.NewGo for options that are valid.
func mustNewGo(t *testing.T, opts ...recoverer.Option) func(context.Context, func(context.Context)) {
	t.Helper()
	goSafe, err := recoverer.NewGo(opts...)
	require.NoError(t, err, "recoverer.NewGo")
	return goSafe
}

func TestNewGoRecoversAndReports(t *testing.T) {
	capture, logger := newCapture()
	rep := &recordingReporter{id: "evt-go"}
	type key struct{}
	ctx := context.WithValue(context.Background(), middleware.RequestIDKey, "req-go-1")
	ctx = context.WithValue(ctx, key{}, "v")

	mustNewGo(t, recoverer.WithLogger(logger), recoverer.WithReporter(rep))(ctx, func(ctx context.Context) { panicNow("background boom") })
	waitRecord(t, capture)

	records := capture.withMsg(msgPanicGoroutine)
	require.Len(t, records, 1, "records: %v", capture.all())
	rec := records[0]
	assert.Equal(t, "background boom", rec.Attrs["panic"], "panic attribute")
	assert.Contains(t, rec.Attrs["stack"], "recoverer_test.panicNow", "stack must show fn's frame")
	assert.Equal(t, "req-go-1", rec.Attrs["http.request.id"], "request id from ctx")
	assert.NotContains(t, rec.Attrs, "http.request.method", "no request in a goroutine")
	assert.Equal(t, "evt-go", rec.Attrs["sentry.event_id"], "the Reporter's event id logged")

	reported := rep.reported()
	require.Len(t, reported, 1, "reports")
	p := reported[0]
	assert.Equal(t, "background boom", p.Value, "value")
	require.NotEmpty(t, p.Frames, "frames")
	assert.True(t, strings.HasSuffix(p.Frames[0].Function, "recoverer_test.panicNow"), "innermost frame %q", p.Frames[0].Function)
	assert.Nil(t, p.Request, "no request in a goroutine")
	assert.Empty(t, p.Route, "no route in a goroutine")
	rep.mu.Lock()
	assert.Equal(t, "v", rep.ctxs[0].Value(key{}), "the Reporter gets the goroutine's ctx")
	rep.mu.Unlock()
}

func TestGoWithoutPanic(t *testing.T) {
	capture, logger := newCapture()
	ran := make(chan context.Context, 1)
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	goSafe := mustNewGo(t, recoverer.WithLogger(logger))
	goSafe(ctx, func(ctx context.Context) { ran <- ctx })
	got := <-ran
	assert.Equal(t, "v", got.Value(key{}), "fn gets ctx")
	assert.Empty(t, capture.all(), "nothing logged")

	goSafe(ctx, nil)       // must not start anything, nor panic
	recoverer.Go(ctx, nil) // nor here
	goSafe(nil, func(ctx context.Context) { ran <- ctx })
	assert.NotNil(t, <-ran, "nil ctx becomes Background")
	//lint:ignore SA1012 a nil ctx is documented to mean context.Background
	recoverer.Go(nil, func(ctx context.Context) { ran <- ctx })
	assert.NotNil(t, <-ran, "nil ctx becomes Background")
}

// TestGoLogsToTheDefaultLogger: Go, without options, recovers and logs to
// slog.Default at the time of the panic.
func TestGoLogsToTheDefaultLogger(t *testing.T) {
	capture, logger := newCapture()
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	recoverer.Go(context.Background(), func(context.Context) { panicNow("to the default logger") })
	waitRecord(t, capture)
	records := capture.withMsg(msgPanicGoroutine)
	require.Len(t, records, 1, "records")
	assert.Equal(t, "to the default logger", records[0].Attrs["panic"], "panic attribute")
}

func TestGoFromHandlerKeepsRequestValues(t *testing.T) {
	capture, logger := newCapture()
	goSafe := mustNewGo(t, recoverer.WithLogger(logger))
	h := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		goSafe(context.WithoutCancel(r.Context()), func(context.Context) { panicNow("after the response") })
		w.WriteHeader(http.StatusAccepted)
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/jobs", nil)
	req.Header.Set("X-Request-Id", "req-job")
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusAccepted, rec.Code, "the response is not affected")
	waitRecord(t, capture)
	records := capture.withMsg(msgPanicGoroutine)
	require.Len(t, records, 1, "records")
	assert.Equal(t, "req-job", records[0].Attrs["http.request.id"], "request id")
}
