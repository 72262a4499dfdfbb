package recoverer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
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

func TestGoRecoversAndReports(t *testing.T) {
	sentrySrv, hub := newSentry(t, sentry.ClientOptions{})
	capture, logger := newCapture()
	ctx := context.WithValue(context.Background(), middleware.RequestIDKey, "req-go-1")

	recoverer.Go(ctx, func(ctx context.Context) { panicNow("background boom") },
		recoverer.WithLogger(logger), recoverer.WithSentry(hub))
	waitRecord(t, capture)

	records := capture.withMsg(msgPanicGoroutine)
	require.Len(t, records, 1, "records: %v", capture.all())
	rec := records[0]
	assert.Equal(t, "background boom", rec.Attrs["panic"], "panic attribute")
	assert.Contains(t, rec.Attrs["stack"], "recoverer_test.panicNow", "stack must show fn's frame")
	assert.Equal(t, "req-go-1", rec.Attrs["http.request.id"], "request id from ctx")
	assert.NotContains(t, rec.Attrs, "http.request.method", "no request in a goroutine")

	require.True(t, hub.Flush(flushTimeout), "flush")
	events := sentrySrv.Events()
	require.Len(t, events, 1, "events")
	ev := events[0]
	assert.Equal(t, string(ev.EventID), rec.Attrs["sentry.event_id"], "event id logged")
	assert.Equal(t, "background boom", ev.Exception[0].Value, "exception value")
	assert.True(t, hasFrame(ev.Exception[0].Stacktrace, testModule, "panicNow"), "fn's frame in the event")
	assert.Equal(t, "req-go-1", ev.Tags["request_id"], "request id tag")
	assert.Nil(t, ev.Request, "no request in the event")
}

func TestGoWithoutPanic(t *testing.T) {
	capture, logger := newCapture()
	ran := make(chan context.Context, 1)
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	recoverer.Go(ctx, func(ctx context.Context) { ran <- ctx }, recoverer.WithLogger(logger))
	got := <-ran
	assert.Equal(t, "v", got.Value(key{}), "fn gets ctx")
	assert.Empty(t, capture.all(), "nothing logged")

	recoverer.Go(ctx, nil) // must not start anything, nor panic
	//lint:ignore SA1012 a nil ctx is documented to mean context.Background
	recoverer.Go(nil, func(ctx context.Context) { ran <- ctx })
	assert.NotNil(t, <-ran, "nil ctx becomes Background")
}

func TestGoFromHandlerKeepsRequestValues(t *testing.T) {
	capture, logger := newCapture()
	h := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recoverer.Go(context.WithoutCancel(r.Context()), func(context.Context) { panicNow("after the response") },
			recoverer.WithLogger(logger))
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
