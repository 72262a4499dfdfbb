package slowdown

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/recoverer"
)

func TestNewRejectsBadFeatureConfig(t *testing.T) {
	for name, tt := range map[string]struct {
		opt  Option
		want string
	}{
		"nil after function":      {WithAfterFunc(nil), "slowdown: WithAfterFunc: nil function"},
		"nil count-only function": {WithCountOnly(nil), "slowdown: WithCountOnly: nil function"},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := New(1, time.Minute, tt.opt)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, d)
		})
	}
}

// planRequest is a request whose X-Plan header picks its after.
func planRequest(plan string) *http.Request {
	r := newRequest()
	r.Header.Set("X-Plan", plan)
	return r
}

// TestAfterFunc: the threshold per request, with headers that show it; a
// key's count carries over when its threshold changes.
func TestAfterFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		d, err := New(1, time.Minute, WithName("slow"), WithStep(time.Second), WithHeaders(ratelimit.HeadersIETF),
			WithAfterFunc(func(r *http.Request) int {
				n, _ := strconv.Atoi(r.Header.Get("X-Plan"))
				return n
			}))
		require.NoError(t, err)
		h := d.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			delay, _ := FromContext(r.Context())
			delays = append(delays, delay)
		}))
		var last http.Header
		for _, plan := range []string{"3", "3", "3", "3", "5", "2", "0"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, planRequest(plan))
			require.Equal(t, http.StatusOK, rec.Code)
			last = rec.Header()
			if plan == "5" {
				assert.Equal(t, `"slow";q=5;w=60`, rec.Header().Get("RateLimit-Policy"), "the request's after")
				assert.Equal(t, `"slow";r=0;t=119`, rec.Header().Get("RateLimit"), "5 of 5, a second after the 4th waited")
			}
		}
		assert.Equal(t, []time.Duration{0, 0, 0, time.Second, 0, 4 * time.Second, 7 * time.Second}, delays,
			"after 3: the 4th waits; after 5: the 5th does not; after 2: the 6th waits 4 steps; after 0: the 7th 7")
		assert.Empty(t, last.Get("RateLimit"), "no fields for a response whose after is 0")

		var logs bytes.Buffer
		bad, err := New(1, time.Minute, WithAfterFunc(func(*http.Request) int { return -1 }),
			WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		calls := 0
		rec := httptest.NewRecorder()
		bad.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ })).ServeHTTP(rec, newRequest())
		assert.Equal(t, http.StatusInternalServerError, rec.Code, "a negative after is a bug, never a bypass")
		assert.Zero(t, calls)
		assert.Contains(t, logs.String(), "after function failed")
	})
}

// TestCountOnly: what counts is what the function says; a panic or a
// client that left counts as a failure.
func TestCountOnly(t *testing.T) {
	failures := func(status int) bool { return status >= 400 }
	successes := func(status int) bool { return status < 400 }
	tests := []struct {
		name   string
		counts func(int) bool
		handle func(w http.ResponseWriter, cancel context.CancelFunc)
		kept   bool
	}{
		{"failure, counting failures", failures, func(w http.ResponseWriter, _ context.CancelFunc) { w.WriteHeader(401) }, true},
		{"success, counting failures", failures, func(http.ResponseWriter, context.CancelFunc) {}, false},
		{"panic, counting failures", failures, func(http.ResponseWriter, context.CancelFunc) { panic("boom") }, true},
		{"client left, counting failures", failures, func(_ http.ResponseWriter, cancel context.CancelFunc) { cancel() }, true},
		{"panic, counting successes", successes, func(http.ResponseWriter, context.CancelFunc) { panic("boom") }, false},
		{"success, counting successes", successes, func(http.ResponseWriter, context.CancelFunc) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := newMemoryStore(t)
				d, err := New(2, time.Minute, WithStore(store), WithStep(time.Second), WithCountOnly(tt.counts))
				require.NoError(t, err)
				rec, err := recoverer.New(recoverer.WithLogger(slog.New(slog.DiscardHandler)))
				require.NoError(t, err)
				var cancel context.CancelFunc
				h := rec(d.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.handle(w, cancel) })))
				for range 3 {
					var ctx context.Context
					ctx, cancel = context.WithCancel(context.Background())
					h.ServeHTTP(httptest.NewRecorder(), newRequest().WithContext(ctx))
					cancel()
				}
				ws := make([]ratelimit.Window, 1)
				require.NoError(t, store.Peek(context.Background(), []ratelimit.Policy{d.Policy()}, "192.0.2.1", time.Now(), ws))
				if tt.kept {
					assert.EqualValues(t, 3, ws[0].Current, "all 3 counted")
				} else {
					assert.Zero(t, ws[0].Current, "all given back")
				}
			})
		})
	}
}

// TestCountOnlyConcurrent: concurrent failed logins are numbered one after
// another while in flight, so the delays grow as they would without
// WithCountOnly; given back, successes leave no trace.
func TestCountOnlyConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := New(5, time.Minute, WithStep(time.Second), WithMaxDelay(time.Hour),
			WithCountOnly(func(status int) bool { return status >= 400 }))
		require.NoError(t, err)
		var delayed atomic.Int64
		h := d.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := FromContext(r.Context()); ok {
				delayed.Add(1)
			}
			w.WriteHeader(http.StatusUnauthorized)
		}))
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), newRequest()) })
		}
		wg.Wait()
		assert.EqualValues(t, 45, delayed.Load(), "all but the first 5 of 50 concurrent failures were delayed")
	})
}
