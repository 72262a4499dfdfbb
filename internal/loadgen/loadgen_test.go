package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunClosedLoopCountsEverything(t *testing.T) {
	var served atomic.Int64
	var peers peerSet
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		peers.add(r.RemoteAddr)
		if n%10 == 0 {
			http.Error(w, "nope", http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()

	res, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 4, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	// Requests in flight when the run ends are dropped by the client: at
	// most one per worker.
	assert.InDelta(t, served.Load(), res.Requests+res.Errors, 4, "every request the server saw is counted")
	assert.Zero(t, res.Errors, "errors: %v", res.ErrorSamples)
	assert.Equal(t, res.Status[429], res.Failed())
	assert.InDelta(t, float64(res.Requests)/10, float64(res.Status[429]), 1)
	// Keep-alive: a handful of connections, not one per request (the
	// transport may dial before a finished connection is back in its pool).
	assert.LessOrEqual(t, peers.len(), 12, "connections for %d requests", res.Requests)
	assert.True(t, res.P50 <= res.P99 && res.P99 <= res.Max)
}

func TestRunOpenLoopHoldsTheRate(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()

	res, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 4, Duration: time.Second, Rate: 200})
	require.NoError(t, err)
	// 200 req/s for 1s: the schedule, not the server speed, sets the count.
	assert.InDelta(t, 200, float64(res.Requests), 20, "requests at 200/s for 1s")
}

func TestRunFromAnotherLoopbackAddress(t *testing.T) {
	var peer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		peer.Store(host)
	}))
	defer srv.Close()
	_, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 1, Duration: 50 * time.Millisecond,
		LocalAddr: net.ParseIP("127.0.0.2")})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2", peer.Load())
}

func TestRunCountsTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every request fails to connect
	res, err := Run(context.Background(), Config{URL: "http://" + addr, Concurrency: 2, Duration: 100 * time.Millisecond})
	require.NoError(t, err)
	assert.Positive(t, res.Errors)
	assert.Zero(t, res.Requests)
	assert.NotEmpty(t, res.ErrorSamples)
	assert.Equal(t, res.Errors, res.Failed())
}

func TestRunRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no URL", Config{}, "URL is required"},
		{"negative rate", Config{URL: "http://x", Rate: -1}, "rate must be >= 0"},
		{"unparsable URL", Config{URL: "http://%zz/"}, "invalid URL escape"},
		{"no scheme", Config{URL: "localhost/hello"}, "not an absolute http or https URL"},
		{"other scheme", Config{URL: "ftp://127.0.0.1/"}, "not an absolute http or https URL"},
		{"bad method", Config{URL: "http://x", Method: "GET /"}, "invalid method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Duration = 100 * time.Millisecond // in case it runs
			_, err := Run(context.Background(), c.cfg)
			assert.ErrorContains(t, err, c.wantErr)
		})
	}
}

type peerSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *peerSet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	s.m[k] = true
}

func (s *peerSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
