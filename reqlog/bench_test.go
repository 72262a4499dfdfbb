package reqlog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/shipshape-go/shipshape/reqlog"
)

// BenchmarkHandler logs one record with two attributes through
// slog.JSONHandler to io.Discard: bare, through NewHandler with a context
// that has nothing of a request, and through NewHandler within a request
// (an Entry with the peer, chi's request id, an OpenTelemetry span).
func BenchmarkHandler(b *testing.B) {
	e := &reqlog.Entry{}
	e.SetPeer("203.0.113.7")
	inRequest := withSpan(context.WithValue(reqlog.NewContext(context.Background(), e), middleware.RequestIDKey, "host/abc-000001"))
	json := slog.NewJSONHandler(io.Discard, nil)
	wrapped, err := reqlog.NewHandler(json)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    slog.Handler
		ctx  context.Context
	}{
		{"bare JSON", json, context.Background()},
		{"NewHandler, nothing to add", wrapped, context.Background()},
		{"NewHandler, in a request", wrapped, inRequest},
	} {
		b.Run(bc.name, func(b *testing.B) {
			logger := slog.New(bc.h)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					logger.InfoContext(bc.ctx, "cart updated", "items", 3, "cart", "c-42")
				}
			})
		})
	}
}
