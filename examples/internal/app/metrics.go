package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics is the process's OpenTelemetry meter provider, set as the
// global one (every shipshape package records through the global provider
// by default), exported in the Prometheus text format by Handler.
type Metrics struct {
	Provider *sdkmetric.MeterProvider
	// Handler writes this process's metrics (promhttp on the exporter's
	// registry): serve it at /metrics, or give it to cluster.WithMetrics.
	Handler http.Handler
}

// NewMetrics sets up the SDK with the Prometheus exporter on a registry
// of its own and makes it the global provider. Call it before the
// middleware is built (New), once per process.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("app: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	otel.SetMeterProvider(mp)
	return &Metrics{Provider: mp, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}

// Shutdown stops the provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.Provider.Shutdown(ctx) }

// MetricsAddr is addr with the loopback address for an empty host
// (":9464" is "127.0.0.1:9464"): the metrics are for the operator's
// scraper, never for the public port; listen on every interface only by
// saying so ("0.0.0.0:9464").
func MetricsAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("app: -metrics-addr: %w", err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// ServeMetrics serves h at GET /metrics on ln, in the background; the
// returned server is shut down by the caller.
func ServeMetrics(ln net.Listener, h http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}
