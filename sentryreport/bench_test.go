package sentryreport_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getsentry/sentry-go"

	"github.com/shipshape-go/shipshape/sentryreport"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

// discardWriter is a ResponseWriter that does no I/O.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkPanicWithSentry is a recovered panic reported to Sentry: the
// stack, the record (discarded), the 500, and the event built and handed to
// a real client's asynchronous transport (pointed at a closed port, so
// delivery fails fast and nothing accumulates). This is what a panic costs
// the request's goroutine; recoverer's BenchmarkPanic is the same without
// Sentry.
func BenchmarkPanicWithSentry(b *testing.B) {
	client := sentrytest.NewClient(b, sentrytest.ClosedDSN(b), sentry.ClientOptions{})
	hub := sentry.NewHub(client, sentry.NewScope())
	h := recovering(b, slog.New(slog.DiscardHandler), mustReporter(b, sentryreport.WithHub(hub)),
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bench") }))
	req := httptest.NewRequest(http.MethodGet, "/items/1?q=x&token=y", nil)
	req.Header.Set("User-Agent", "bench")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	}
}
