package connlimit

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
)

// TestMetricsAcceptedRefusedOpen: 5 connections from one client against
// a per-IP cap of 3: 3 admitted and open, 2 refused for max_conns_per_ip;
// once every connection is closed none is open.
func TestMetricsAcceptedRefusedOpen(t *testing.T) {
	mr := metrictest.New(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := mustNew(t, inner, WithMaxConnsPerIP(3), WithMeterProvider(mr))
	_, wait := llServe(t, ln)

	var held []net.Conn
	for range 5 {
		c, ok, _ := llDial(t, inner.Addr(), "127.0.0.1")
		if ok {
			held = append(held, c)
		}
	}
	require.Len(t, held, 3)
	tests := []struct {
		name   string
		metric string
		kv     []attribute.KeyValue
		want   int64
	}{
		{"accepted", "shipshape.connlimit.connections.accepted", nil, 3},
		{"refused per IP", "shipshape.connlimit.connections.refused", []attribute.KeyValue{attribute.String("shipshape.connlimit.reason", "max_conns_per_ip")}, 2},
		{"refused other", "shipshape.connlimit.connections.refused", []attribute.KeyValue{attribute.String("shipshape.connlimit.reason", "max_conns")}, 0},
		{"open", "shipshape.connlimit.connections.open", nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mr.Value(t, tt.metric, tt.kv...))
		})
	}
	for _, c := range held {
		require.NoError(t, c.Close())
	}
	// The server closes its side once it reads EOF: a liveness bound.
	require.Eventually(t, func() bool { return mr.Value(t, "shipshape.connlimit.connections.open") == 0 },
		10*time.Second, 5*time.Millisecond, "open connections after every client closed")
	require.NoError(t, ln.Close())
	wait()
}

func TestWithMeterProviderNil(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	_, err = New(inner, WithMeterProvider(nil))
	require.EqualError(t, err, "connlimit: WithMeterProvider: nil provider")
}
