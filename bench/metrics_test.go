package bench_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/recoverer"
	"github.com/shipshape-go/shipshape/slowdown"
)

// fullStack is the examples' stack on an allowed request, outermost
// first: accesslog (to a discarding handler) → recoverer → slowdown →
// ratelimit → a ServeMux route, every package recording to mp (nil: the
// global provider, unset, which records nothing).
func fullStack(b *testing.B, mp metric.MeterProvider) http.Handler {
	b.Helper()
	logOpts := []accesslog.Option{}
	recOpts := []recoverer.Option{recoverer.WithLogger(slog.New(slog.DiscardHandler))}
	slowOpts := []slowdown.Option{}
	limOpts := []ratelimit.Option{}
	if mp != nil {
		logOpts = append(logOpts, accesslog.WithMeterProvider(mp))
		recOpts = append(recOpts, recoverer.WithMeterProvider(mp))
		slowOpts = append(slowOpts, slowdown.WithMeterProvider(mp))
		limOpts = append(limOpts, ratelimit.WithMeterProvider(mp))
	}
	access, err := accesslog.New(slog.New(slog.DiscardHandler), logOpts...)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := recoverer.New(recOpts...)
	if err != nil {
		b.Fatal(err)
	}
	slow, err := slowdown.New(1<<30, time.Hour, slowOpts...)
	if err != nil {
		b.Fatal(err)
	}
	lim, err := ratelimit.New(1<<30, time.Hour, limOpts...)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", benchOK)
	return access(rec(slow.Handler(lim.Handler(mux))))
}

// BenchmarkFullStackMetrics: what the metrics cost a request of the whole
// stack: none (no provider set: the global no-op) beside the SDK with the
// Prometheus exporter (every instrument recording; a scrape is not part
// of the request).
func BenchmarkFullStackMetrics(b *testing.B) {
	b.Run("provider=none", func(b *testing.B) { benchHandler(b, fullStack(b, nil)) })
	b.Run("provider=sdk+prometheus", func(b *testing.B) {
		exp, err := otelprom.New(otelprom.WithRegisterer(prometheus.NewRegistry()))
		if err != nil {
			b.Fatal(err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		benchHandler(b, fullStack(b, mp))
	})
}
