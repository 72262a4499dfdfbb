package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/problem"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })

// bubbleStart is where the clock of a testing/synctest bubble starts:
// midnight UTC, a boundary of every window that divides a day. Tests
// that depend on where in its window a request falls run in a bubble and
// move the clock with time.Sleep, which is instant there.
var bubbleStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// sleepUntil moves a bubble's clock to at.
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// newTestLimiter is New for options that must be valid. Made inside a
// bubble, the Limiter reads the bubble's clock.
func newTestLimiter(t *testing.T, limit int, window time.Duration, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(limit, window, opts...)
	require.NoError(t, err)
	return l
}

func serve(h http.Handler, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// typedNilStore is a nil *MemoryStore passed as a Store: not nil as an
// interface, but its first Take would panic.
var typedNilStore Store = (*MemoryStore)(nil)

func TestNewRejectsBadConfig(t *testing.T) {
	const namingRule = `ratelimit: WithName: name must be printable ASCII without '"' or '\'`
	const tooLong = "ratelimit: WithName: name must be 1 to 64 characters"
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		opts   []Option
		want   string
	}{
		{"zero limit", 0, time.Second, nil, "ratelimit: invalid policy\nratelimit: limit must be > 0"},
		{"negative limit", -5, time.Second, nil, "ratelimit: invalid policy\nratelimit: limit must be > 0"},
		{"zero window", 1, 0, nil, "ratelimit: invalid policy\nratelimit: window must be > 0"},
		{"negative window", 1, -time.Second, nil, "ratelimit: invalid policy\nratelimit: window must be > 0"},
		{"nil option", 1, time.Second, []Option{WithName("api"), nil}, "ratelimit: nil option"},
		{"nil store", 1, time.Second, []Option{WithStore(nil)}, "ratelimit: WithStore: nil store"},
		{"typed nil store", 1, time.Second, []Option{WithStore(typedNilStore)}, "ratelimit: WithStore: nil store"},
		{"nil key", 1, time.Second, []Option{WithKey(nil)}, "ratelimit: WithKey: nil KeyFunc"},
		{"empty name", 1, time.Second, []Option{WithName("")}, tooLong},
		{"long name", 1, time.Second, []Option{WithName(strings.Repeat("n", 65))}, tooLong},
		{"quote in name", 1, time.Second, []Option{WithName(`a"b`)}, namingRule},
		{"backslash in name", 1, time.Second, []Option{WithName(`a\b`)}, namingRule},
		{"newline in name", 1, time.Second, []Option{WithName("a\nb")}, namingRule},
		{"non-ASCII name", 1, time.Second, []Option{WithName("é")}, namingRule},
		{"unknown header style", 1, time.Second, []Option{WithHeaders(HeaderStyle(9))}, "ratelimit: WithHeaders: unknown header style HeaderStyle(9)"},
		{"negative header style", 1, time.Second, []Option{WithHeaders(HeaderStyle(-1))}, "ratelimit: WithHeaders: unknown header style HeaderStyle(-1)"},
		{"nil problem writer", 1, time.Second, []Option{WithProblemWriter(nil)}, "ratelimit: WithProblemWriter: nil Writer"},
		{"nil skip", 1, time.Second, []Option{WithSkip(nil)}, "ratelimit: WithSkip: nil function"},
		{"nil logger", 1, time.Second, []Option{WithLogger(nil)}, "ratelimit: WithLogger: nil logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.limit, tt.window, tt.opts...)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, l)
		})
	}
	_, err := New(0, time.Second)
	assert.ErrorIs(t, err, ErrInvalidPolicy)
	_, err = New(1, time.Second, WithName("api-v2.login"), WithHeaders(HeadersNone), WithStore(newMemoryStore(t)))
	assert.NoError(t, err, "valid options")
}

func TestHandlerLimitsPerClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(t, 3, time.Minute)
		h := l.Handler(okHandler)
		for i := range 3 {
			rec := serve(h, "192.0.2.1:1000")
			require.Equal(t, 200, rec.Code, "request %d", i+1)
			assert.Equal(t, "ok", rec.Body.String())
		}
		rec := serve(h, "192.0.2.1:1001")
		assert.Equal(t, http.StatusTooManyRequests, rec.Code)
		assert.Equal(t, 200, serve(h, "192.0.2.2:1000").Code, "another client is not affected")

		time.Sleep(2 * time.Minute)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1000").Code, "the window slid")
	})
}

func TestHandlerDeniedResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(t, 1, time.Minute)
		h := l.Handler(okHandler)
		serve(h, "192.0.2.1:1")
		rec := serve(h, "192.0.2.1:1")
		require.Equal(t, http.StatusTooManyRequests, rec.Code)
		assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
		assert.Equal(t, "120", rec.Header().Get("Retry-After"), "at the start of a window, a limit of 1 fits again after two windows")
		var body problem.Details
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		assert.Equal(t, problem.Details{Type: "about:blank", Title: "Too Many Requests", Status: 429,
			Detail: "Rate limit exceeded: retry in 120 seconds."}, body)
	})
}

// TestHeadersGolden checks every header style at the same points.
func TestHeadersGolden(t *testing.T) {
	type step struct {
		at      time.Duration // since the bubble's start, a window boundary
		status  int
		headers map[string]string // "" means must be absent
	}
	tests := []struct {
		style HeaderStyle
		steps []step
	}{
		{HeadersIETF, []step{
			{10 * time.Second, 200, map[string]string{
				"RateLimit-Policy": `"api";q=2;w=60`, "RateLimit": `"api";r=1;t=110`,
				"X-RateLimit-Limit": "", "Retry-After": ""}},
			{20 * time.Second, 200, map[string]string{"RateLimit": `"api";r=0;t=100`}},
			{30 * time.Second, 429, map[string]string{
				"RateLimit-Policy": `"api";q=2;w=60`, "RateLimit": `"api";r=0;t=90`, "Retry-After": "60"}},
		}},
		{HeadersLegacy, []step{
			{10 * time.Second, 200, map[string]string{
				"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1",
				"X-RateLimit-Reset": "946684920", // the bubble's start + 120s, Unix seconds
				"RateLimit":         "", "RateLimit-Policy": ""}},
			{20 * time.Second, 200, map[string]string{"X-RateLimit-Remaining": "0"}},
			{30 * time.Second, 429, map[string]string{"X-RateLimit-Remaining": "0", "Retry-After": "60"}},
		}},
		{HeadersBoth, []step{
			{10 * time.Second, 200, map[string]string{
				"RateLimit-Policy": `"api";q=2;w=60`, "RateLimit": `"api";r=1;t=110`,
				"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "946684920"}},
		}},
		{HeadersNone, []step{
			{10 * time.Second, 200, map[string]string{"RateLimit": "", "RateLimit-Policy": "", "X-RateLimit-Limit": ""}},
			{20 * time.Second, 200, nil},
			{30 * time.Second, 429, map[string]string{"RateLimit": "", "Retry-After": "60"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.style.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newTestLimiter(t, 2, time.Minute, WithName("api"), WithHeaders(tt.style))
				h := l.Handler(okHandler)
				for _, s := range tt.steps {
					sleepUntil(bubbleStart.Add(s.at))
					rec := serve(h, "192.0.2.1:1")
					require.Equal(t, s.status, rec.Code, "at %v", s.at)
					for k, want := range s.headers {
						assert.Equal(t, want, rec.Header().Get(k), "%s at %v", k, s.at)
						if want == "" {
							assert.NotContains(t, rec.Header(), http.CanonicalHeaderKey(k))
						}
					}
				}
			})
		})
	}
}

// TestRetryAfterAtSeveralPoints checks that Retry-After is the time until
// one request fits under the sliding window, not the whole window: the
// request at that time is allowed, and a second earlier it is not.
func TestRetryAfterAtSeveralPoints(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		fill   []time.Duration // admitted requests, since t0
		at     time.Duration   // the refused request
		expect time.Duration   // RetryAfter
	}{
		// 10 at 0s fill window 0; refused at 30s: fits once 10·(60−e)/60 ≤ 9 in
		// window 1, at e=6s: 60−30+6 = 36s.
		{"same window", 10, repeat(0, 10), 30 * time.Second, 36 * time.Second},
		// 10 in window 0, then 7 in window 1 at 45s (10·15/60 = 2.5, +7 = 9.5).
		// Refused at 46s (10·14/60 + 7 + 1 > 10); fits once 10·(60−e)/60 ≤ 2,
		// at e = 48s, without waiting for the next window.
		{"previous window sliding out", 10, append(repeat(0, 10), repeat(45*time.Second+time.Minute, 7)...),
			46*time.Second + time.Minute, 2 * time.Second},
		{"limit 1", 1, repeat(15*time.Second, 1), 20 * time.Second, 100 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.limit, time.Minute)
			require.NoError(t, err)
			ctx := context.Background()
			for i, at := range tt.fill {
				d, err := l.AllowN(ctx, "k", t0.Add(at), 1)
				require.NoError(t, err)
				require.True(t, d.Allowed, "fill %d at %v", i, at)
			}
			d, err := l.AllowN(ctx, "k", t0.Add(tt.at), 1)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			assert.InDelta(t, float64(tt.expect), float64(d.RetryAfter), float64(time.Millisecond), "RetryAfter %v", d.RetryAfter)
			assert.Zero(t, d.Remaining)

			// A second early: still refused. At RetryAfter: allowed.
			early, err := l.AllowN(ctx, "k", t0.Add(tt.at+d.RetryAfter-time.Second), 1)
			require.NoError(t, err)
			assert.False(t, early.Allowed, "a second before RetryAfter")
			onTime, err := l.AllowN(ctx, "k", t0.Add(tt.at+d.RetryAfter), 1)
			require.NoError(t, err)
			assert.True(t, onTime.Allowed, "at RetryAfter")
		})
	}
}

func repeat(at time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = at
	}
	return out
}

func TestDecisionFields(t *testing.T) {
	l, err := New(10, time.Minute)
	require.NoError(t, err)
	ctx := context.Background()
	d, err := l.AllowN(ctx, "k", t0.Add(15*time.Second), 4)
	require.NoError(t, err)
	assert.Equal(t, Decision{Allowed: true, Policy: "default", Limit: 10, Remaining: 6, Reset: 105 * time.Second}, d)
	// In the next window at 45s the 4 weigh 1; 1 new: 2 in the estimate.
	d, err = l.AllowN(ctx, "k", t0.Add(time.Minute+45*time.Second), 1)
	require.NoError(t, err)
	assert.Equal(t, Decision{Allowed: true, Policy: "default", Limit: 10, Remaining: 8, Reset: 75 * time.Second}, d)
}

func TestAllowNRejectsBadN(t *testing.T) {
	l, err := New(10, time.Minute)
	require.NoError(t, err)
	for _, n := range []int{0, -1, 11} {
		_, err := l.AllowN(context.Background(), "k", t0, n)
		assert.ErrorIs(t, err, ErrInvalidN, "n=%d", n)
	}
}

// TestBurstOnOneKeyAdmitsExactlyLimit runs in a bubble so that the burst
// cannot straddle a window boundary.
func TestBurstOnOneKeyAdmitsExactlyLimit(t *testing.T) {
	const limit, burst = 1000, 10_000
	synctest.Test(t, func(t *testing.T) {
		l := newTestLimiter(t, limit, time.Minute)
		h := l.Handler(okHandler)
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range burst {
			wg.Go(func() {
				<-start
				switch serve(h, "198.51.100.7:4242").Code {
				case 200:
					ok.Add(1)
				case 429:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		assert.EqualValues(t, limit, ok.Load(), "admitted")
		assert.EqualValues(t, burst-limit, refused.Load(), "refused")
	})
}

// TestProblemWriterSeesDecision: the 429 goes through the Writer with the
// Decision in the request's context and the headers already on w;
// allowed requests keep their context.
func TestProblemWriterSeesDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got Decision
		var gotOK bool
		var gotHeader http.Header
		l := newTestLimiter(t, 1, time.Minute, WithProblemWriter(func(w http.ResponseWriter, r *http.Request, d problem.Details) {
			got, gotOK = FromContext(r.Context())
			gotHeader = w.Header().Clone()
			w.WriteHeader(http.StatusTeapot)
		}))
		h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, ok := FromContext(r.Context())
			assert.False(t, ok, "allowed requests keep their context")
		}))
		serve(h, "192.0.2.1:1")
		rec := serve(h, "192.0.2.1:1")
		assert.Equal(t, http.StatusTeapot, rec.Code)
		require.True(t, gotOK, "FromContext in the Writer")
		assert.Equal(t, Decision{Policy: "default", Limit: 1, Reset: 120 * time.Second, RetryAfter: 120 * time.Second}, got)
		assert.Equal(t, "120", gotHeader.Get("Retry-After"), "Retry-After set before the Writer ran")
		assert.Equal(t, `"default";r=0;t=120`, gotHeader.Get("RateLimit"), "RateLimit set before the Writer ran")
	})
}

type failingStore struct{ calls atomic.Int64 }

var errRefused = errors.New("connection refused to 10.1.2.3:6379")

func (s *failingStore) Take(context.Context, Policy, string, time.Time, int) (Window, error) {
	s.calls.Add(1)
	return Window{}, errRefused
}

func (s *failingStore) TakeAll(context.Context, []Policy, string, time.Time, int, []Window) (bool, error) {
	s.calls.Add(1)
	return false, errRefused
}

func (s *failingStore) Refund(context.Context, []Policy, string, int, []Window) error {
	return errRefused
}

func (s *failingStore) Peek(context.Context, []Policy, string, time.Time, []Window) error {
	return errRefused
}

func (s *failingStore) Reset(context.Context, []Policy, string) error { return errRefused }

func TestStoreErrorFailsOpenAndReportsOnce(t *testing.T) {
	var logs bytes.Buffer
	store := &failingStore{}
	l := newTestLimiter(t, 1, time.Minute, WithStore(store),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	h := l.Handler(okHandler)
	for range 5 {
		rec := serve(h, "192.0.2.1:1")
		assert.Equal(t, 200, rec.Code, "fail open serves the request")
		assert.NotContains(t, rec.Header(), "Ratelimit", "no headers without a decision")
	}
	assert.EqualValues(t, 5, store.calls.Load())
	assert.Equal(t, 1, strings.Count(logs.String(), "store failed"), "reported once, not per request: %s", logs.String())
}

func TestStoreErrorFailClosed(t *testing.T) {
	var logs bytes.Buffer
	l := newTestLimiter(t, 1, time.Minute, WithStore(&failingStore{}), WithFailOpen(false),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	called := false
	h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	for range 3 {
		rec := serve(h, "192.0.2.1:1")
		assert.False(t, called)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
		assert.NotContains(t, rec.Body.String(), "10.1.2.3", "the error text never reaches the client")
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "store failed, refusing with 503"), "reported once: %s", logs.String())
	assert.Contains(t, logs.String(), "10.1.2.3", "the error text reaches the log")
}

func TestKeyErrorNeverBypasses(t *testing.T) {
	tests := []struct {
		name   string
		key    KeyFunc
		remote string
		status int
		logged bool // the error is the server's, worth a log line
	}{
		{"missing header is the client's fault", KeyByHeader("X-API-Key"), "192.0.2.1:1", 400, false},
		{"unparsable RemoteAddr", KeyByIP, "not-an-ip", 400, false},
		{"empty RemoteAddr", KeyByIP, "", 400, false},
		{"misconfigured prefix is a server error", KeyByIPPrefix(0, 64), "192.0.2.1:1", 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			l := newTestLimiter(t, 100, time.Minute, WithKey(tt.key), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			called := false
			h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			rec := serve(h, tt.remote)
			assert.False(t, called, "a request without a key is never served uncounted")
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
			if tt.logged {
				assert.Contains(t, logs.String(), "key function failed", "log")
			} else {
				assert.Empty(t, logs.String(), "log: a client's missing key is not the server's error")
			}
		})
	}
}

// apiError is a service's own error format: {"error":{"code":…,"message":…}}.
func apiError(w http.ResponseWriter, r *http.Request, d problem.Details) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": d.Status, "message": d.Detail}})
}

// TestProblemWriterOwnFormat: every response the Limiter generates goes
// through the Writer, in the service's own JSON shape, with the headers
// the Limiter sets already on it.
func TestProblemWriterOwnFormat(t *testing.T) {
	tests := []struct {
		name       string
		opts       []Option
		requests   int // the last one is checked
		status     int
		message    string
		retryAfter string
		rateLimit  string
	}{
		{"denied", nil, 2, 429, "Rate limit exceeded: retry in 120 seconds.", "120", `"default";r=0;t=120`},
		{"no key", []Option{WithKey(KeyByHeader("X-Tenant"))}, 1, 400,
			"The request does not identify a client for rate limiting.", "", ""},
		{"key function error", []Option{WithKey(KeyByIPPrefix(0, 64))}, 1, 500, "", "", ""},
		{"store error, fail closed", []Option{WithStore(&failingStore{}), WithFailOpen(false)}, 1, 503,
			"Rate limiting is unavailable; try again shortly.", "1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := append([]Option{WithProblemWriter(apiError), WithLogger(slog.New(slog.DiscardHandler))}, tt.opts...)
				h := newTestLimiter(t, 1, time.Minute, opts...).Handler(okHandler)
				var rec *httptest.ResponseRecorder
				for range tt.requests {
					rec = serve(h, "192.0.2.1:1")
				}
				assert.Equal(t, tt.status, rec.Code)
				assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				assert.JSONEq(t, fmt.Sprintf(`{"error":{"code":%d,"message":%q}}`, tt.status, tt.message), rec.Body.String())
				assert.Equal(t, tt.retryAfter, rec.Header().Get("Retry-After"), "Retry-After")
				assert.Equal(t, tt.rateLimit, rec.Header().Get("RateLimit"), "RateLimit")
			})
		})
	}
}

// TestLoggerDefaultsToSlogDefault: without WithLogger, errors go to
// slog.Default() as it is when they happen, not as it was at New.
func TestLoggerDefaultsToSlogDefault(t *testing.T) {
	l := newTestLimiter(t, 1, time.Minute, WithStore(&failingStore{}))
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)
	assert.Equal(t, 200, serve(l.Handler(okHandler), "192.0.2.1:1").Code, "fail open")
	assert.Contains(t, logs.String(), "store failed", "the default logger set after New")
}

func TestSkip(t *testing.T) {
	l := newTestLimiter(t, 1, time.Minute, WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	h := l.Handler(okHandler)
	for range 5 {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, 200, rec.Code)
		assert.Empty(t, rec.Header().Get("RateLimit"), "skipped requests are not counted or annotated")
	}
	assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code, "skipped requests did not use the quota")
}

// TestSharedStoreSeparatesNames runs in a bubble so that the three
// requests fall in one window.
func TestSharedStoreSeparatesNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemoryStore(t)
		a := newTestLimiter(t, 1, time.Minute, WithStore(store), WithName("a"))
		b := newTestLimiter(t, 1, time.Minute, WithStore(store), WithName("b"))
		assert.Equal(t, 200, serve(a.Handler(okHandler), "192.0.2.1:1").Code)
		assert.Equal(t, 200, serve(b.Handler(okHandler), "192.0.2.1:1").Code, "other name, own count")
		assert.Equal(t, 429, serve(a.Handler(okHandler), "192.0.2.1:1").Code)
	})
}

func TestHeaderValuesAreNotShared(t *testing.T) {
	l := newTestLimiter(t, 5, time.Minute, WithHeaders(HeadersBoth))
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Ratelimit-Policy"][0] = "tampered"
		w.Header()["X-Ratelimit-Limit"][0] = "tampered"
	}))
	serve(h, "192.0.2.1:1")
	serve(h, "192.0.2.1:1")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.9:1"
	l.Handler(okHandler).ServeHTTP(rec, req)
	assert.Equal(t, `"default";q=5;w=60`, rec.Header().Get("RateLimit-Policy"))
	assert.Equal(t, "5", rec.Header().Get("X-RateLimit-Limit"))
}

// leavingStore is a store during whose take the client goes away: it
// cancels the request's context, then answers with err, or with what the
// store it wraps answers when err is nil.
type leavingStore struct {
	Store
	cancel context.CancelFunc
	err    error
}

func (s *leavingStore) Take(ctx context.Context, p Policy, key string, now time.Time, n int) (Window, error) {
	s.cancel()
	if s.err != nil {
		return Window{}, s.err
	}
	return s.Store.Take(ctx, p, key, now, n)
}

// TestClientGoneNeverPassedOn: a request whose context is done by the time
// it is decided is never passed on, whatever the store answered: not
// served uncounted when a store call cut short by the request's own
// context fails open, and not served after a successful take either. A
// client that left gets 499 (for the access log); under a deadline the
// timeout middleware outside answers. Nothing is reported as a store
// failure.
func TestClientGoneNeverPassedOn(t *testing.T) {
	tests := []struct {
		name     string
		failOpen bool
		store    func(cancel context.CancelFunc) Store // nil: cancelled before the request
		deadline bool                                  // the context's deadline passed, under chi's Timeout
		want     int
	}{
		{name: "cancelled, store error, fail open", failOpen: true,
			store: func(context.CancelFunc) Store { return &failingStore{} }, want: 499},
		{name: "cancelled, store error, fail closed",
			store: func(context.CancelFunc) Store { return &failingStore{} }, want: 499},
		{name: "cancelled, memory store", failOpen: true,
			store: func(context.CancelFunc) Store { return newMemoryStore(t) }, want: 499},
		{name: "left during the take, store error", failOpen: true,
			store: func(c context.CancelFunc) Store { return &leavingStore{cancel: c, err: context.Canceled} }, want: 499},
		{name: "left during the take, store allowed", failOpen: true,
			store: func(c context.CancelFunc) Store { return &leavingStore{Store: newMemoryStore(t), cancel: c} }, want: 499},
		{name: "deadline passed, store error", failOpen: true, deadline: true,
			store: func(context.CancelFunc) Store { return &failingStore{} }, want: http.StatusGatewayTimeout},
		{name: "deadline passed, memory store", failOpen: true, deadline: true,
			store: func(context.CancelFunc) Store { return newMemoryStore(t) }, want: http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := tt.store(cancel)
			if _, leaving := store.(*leavingStore); !leaving && !tt.deadline {
				cancel()
			}
			l := newTestLimiter(t, 3, time.Minute, WithStore(store), WithFailOpen(tt.failOpen),
				WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			var calls atomic.Int64
			var h http.Handler = l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
			if tt.deadline {
				h = middleware.Timeout(-time.Second)(h) // a deadline already past
			}
			for i := range 10 {
				req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
				req.RemoteAddr = "192.0.2.1:1"
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				assert.Equal(t, tt.want, rec.Code, "request %d: status", i+1)
				assert.Empty(t, rec.Body.String(), "request %d: body", i+1)
			}
			assert.Zero(t, calls.Load(), "handler calls for requests whose client had left")
			assert.Empty(t, logs.String(), "log: a request cut short is not a store failure")
		})
	}

	// A live request's store error is still a store failure.
	var logs bytes.Buffer
	l := newTestLimiter(t, 1, time.Minute, WithStore(&failingStore{}),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	assert.Equal(t, 200, serve(l.Handler(okHandler), "192.0.2.1:1").Code, "a live request fails open")
	assert.Contains(t, logs.String(), "store failed", "a live request's store error is reported")
}
