package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/ratelimit/redisstore"
	"github.com/shipshape-go/shipshape/reqlog"
	"github.com/shipshape-go/shipshape/slowdown"
)

// TestDelayerAcrossProcesses runs two Delayers, each with its own
// client and redisstore as two processes would have, on one real
// redis-server: every request's delay follows the count of both together.
func TestDelayerAcrossProcesses(t *testing.T) {
	srv := testenv.StartRedis(t)
	newDelayer := func() *slowdown.Delayer {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		s, err := redisstore.New(c, redisstore.WithTimeout(2*time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		// An hour-long window: the count cannot slide out during the test
		// (rounding the estimate up keeps it stable across a boundary).
		d, err := slowdown.New(2, time.Hour, slowdown.WithStore(s), slowdown.WithStep(time.Millisecond))
		require.NoError(t, err)
		return d
	}
	a, b := newDelayer(), newDelayer()
	ctx := context.Background()

	for i, tc := range []struct {
		d    *slowdown.Delayer
		want time.Duration
	}{{a, 0}, {b, 0}, {a, time.Millisecond}, {b, 2 * time.Millisecond}, {b, 3 * time.Millisecond}} {
		got, err := tc.d.Delay(ctx, "192.0.2.1", time.Now())
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "request %d: got %v, want %v", i+1, got, tc.want)
	}

	// Through the middleware: the 6th request of the same client waits 4ms.
	var seen time.Duration
	h := a.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen, _ = slowdown.FromContext(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)) // from 192.0.2.1
	assert.Equal(t, 4*time.Millisecond, seen, "delay of request 6 through Handler")
}

// TestClientGoneIsNeverServed runs a limiter alone, and the recommended
// stack slowdown → ratelimit, on one redisstore over a real redis-server,
// against clients that leave: an already cancelled context, a connection
// reset right after the request, a connection half-closed after the
// request (the client still reads the answer). net/http cancels the
// request context in each case, often while redisstore is asking Redis;
// no middleware may pass such a request on, so the handler never runs more
// often than the limit and no client reads more of its answers (a login
// guess checked) than the limit.
func TestClientGoneIsNeverServed(t *testing.T) {
	const limit = 3
	stacks := []struct {
		name  string
		after int // of the Delayer; 0: no Delayer
	}{
		{"ratelimit", 0},
		{"slowdown delaying → ratelimit", 1},
		{"slowdown not delaying → ratelimit", 1000},
	}
	forms := []struct {
		name     string
		requests int
		tcp      func(t *testing.T, addr string) int // nil: in process, with a cancelled context
	}{
		{"cancelled context", 100, nil},
		{"reset after the request", 1000, resetAfterRequest},
		{"half-close after the request", 300, halfCloseAfterRequest},
	}
	for _, st := range stacks {
		for _, tt := range forms {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				srv := testenv.StartRedis(t)
				c := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
				t.Cleanup(func() { c.Close() })
				// A timeout no loaded -race run reaches: the fallback store,
				// which counts on its own, must not answer.
				store, err := redisstore.New(c, redisstore.WithTimeout(5*time.Second))
				require.NoError(t, err)
				t.Cleanup(func() { store.Close() })
				logs := &testenv.Buffer{}
				logger := slog.New(slog.NewTextHandler(logs, nil))
				lim, err := ratelimit.New(limit, 24*time.Hour, ratelimit.WithStore(store), ratelimit.WithLogger(logger))
				require.NoError(t, err)
				var calls atomic.Int64
				h := lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					http.Error(w, "wrong password", http.StatusUnauthorized) // a login guess
				}))
				if st.after > 0 {
					slow, err := slowdown.New(st.after, 24*time.Hour, slowdown.WithStore(store), slowdown.WithLogger(logger),
						slowdown.WithStep(time.Millisecond), slowdown.WithMaxDelay(20*time.Millisecond))
					require.NoError(t, err)
					h = slow.Handler(h)
				}

				statuses := map[int]int{}
				if tt.tcp == nil {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					for range tt.requests {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login", nil).WithContext(ctx))
						statuses[rec.Code]++
					}
					assert.Equal(t, tt.requests, statuses[reqlog.StatusClientClosedRequest], "499 recorded for every client that left: %v", statuses)
				} else {
					hs := httptest.NewServer(h)
					for range tt.requests {
						statuses[tt.tcp(t, hs.Listener.Addr().String())]++
					}
					hs.Close() // waits for every handler
				}
				t.Logf("%d requests: handler ran %d times; statuses (0: none read): %v", tt.requests, calls.Load(), statuses)
				assert.LessOrEqual(t, calls.Load(), int64(limit), "handler calls; statuses: %v", statuses)
				assert.LessOrEqual(t, statuses[http.StatusUnauthorized], limit, "answers from the handler: %v", statuses)
				assert.NotContains(t, logs.String(), "store failed")
				assert.False(t, store.Degraded(), "clients leaving are not a Redis outage")
			})
		}
	}
}

const loginRequest = "POST /login HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n"

// resetAfterRequest sends a request on a new connection and resets the
// connection at once (SO_LINGER 0: RST, not FIN).
func resetAfterRequest(t *testing.T, addr string) int {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(c, loginRequest)
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
	_, err = io.WriteString(c, loginRequest)
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	// A bound on a hang, not a timing assertion.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "no answer and no close after 30s: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
