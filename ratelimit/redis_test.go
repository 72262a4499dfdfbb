package ratelimit_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/ratelimit/redisstore"
)

// newRedisLimiter returns a limiter of limit requests per day (a window the
// test cannot straddle in a way that matters) on a redisstore over a real
// redis-server, and the buffer its logger writes to.
func newRedisLimiter(t *testing.T, limit int) (*ratelimit.Limiter, *redisstore.Store, *testenv.Buffer) {
	t.Helper()
	srv := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	// A timeout no loaded -race run reaches: the fallback store, which
	// counts on its own, must not answer.
	store, err := redisstore.New(c, redisstore.WithTimeout(5*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	logs := &testenv.Buffer{}
	l, err := ratelimit.New(limit, 24*time.Hour, ratelimit.WithStore(store), ratelimit.WithName("login"),
		ratelimit.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	require.NoError(t, err)
	return l, store, logs
}

// TestRedisClientGoneCancelledContext: requests whose context is already
// cancelled (the client left before the limiter ran) make redisstore
// return the context's error; the limiter must not fail open on it.
func TestRedisClientGoneCancelledContext(t *testing.T) {
	const limit = 3
	l, store, logs := newRedisLimiter(t, limit)
	var calls atomic.Int64
	h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		assert.Equal(t, 499, rec.Code, "status recorded for a client that left")
	}
	assert.LessOrEqual(t, calls.Load(), int64(limit), "handler calls for 100 requests whose client had left")
	assert.NotContains(t, logs.String(), "store failed")
	assert.False(t, store.Degraded(), "a client leaving is not a Redis outage")
}

// TestRedisClientGoneOverTCP: clients that reset their connection right
// after sending the request, or half-close it and wait for the answer,
// get their request context cancelled by net/http while redisstore is
// asking Redis. Neither may get more requests handled (or, half-closed,
// more answers from the handler) than the limit.
func TestRedisClientGoneOverTCP(t *testing.T) {
	const limit = 5
	tests := []struct {
		name     string
		requests int
		send     func(t *testing.T, addr string) int // the status the client read, 0 for none
	}{
		{"reset after the request", 1000, resetAfterRequest},
		{"half-close after the request", 300, halfCloseAfterRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, store, logs := newRedisLimiter(t, limit)
			var calls atomic.Int64
			srv := httptest.NewServer(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				http.Error(w, "wrong password", http.StatusUnauthorized) // a login guess
			})))
			statuses := map[int]int{}
			for range tt.requests {
				statuses[tt.send(t, srv.Listener.Addr().String())]++
			}
			srv.Close() // waits for every handler
			t.Logf("%d requests: handler ran %d times; statuses the clients read (0: none): %v", tt.requests, calls.Load(), statuses)
			assert.LessOrEqual(t, calls.Load(), int64(limit), "handler calls; statuses the clients read: %v", statuses)
			assert.LessOrEqual(t, statuses[http.StatusUnauthorized], limit, "answers from the handler read by the clients: %v", statuses)
			assert.NotContains(t, logs.String(), "store failed")
			assert.False(t, store.Degraded(), "clients leaving are not a Redis outage")
		})
	}
}

const request = "POST /login HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n"

// resetAfterRequest sends a request on a new connection and resets the
// connection at once (SO_LINGER 0: RST, not FIN).
func resetAfterRequest(t *testing.T, addr string) int {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).SetLinger(0))
	require.NoError(t, c.Close())
	return 0
}

// halfCloseAfterRequest sends a request, closes its sending side (FIN) and
// reads the answer, which net/http still writes.
func halfCloseAfterRequest(t *testing.T, addr string) int {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	// A bound on a hang, not a timing assertion.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		require.NotErrorIs(t, err, context.DeadlineExceeded, "no answer and no close after 30s")
		require.False(t, strings.Contains(err.Error(), "timeout"), "no answer and no close after 30s: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
