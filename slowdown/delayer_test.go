package slowdown

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/reqlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a final handler that records whether it ran and the delay
// it found in its context.
type recorder struct {
	calls atomic.Int64
	delay atomic.Int64
	ok    atomic.Bool
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	d, ok := FromContext(r.Context())
	h.delay.Store(int64(d))
	h.ok.Store(ok)
	_, _ = w.Write([]byte("ok"))
}

// newMemoryStore is ratelimit.NewMemoryStore, which cannot fail without
// options.
func newMemoryStore(t testing.TB) *ratelimit.MemoryStore {
	t.Helper()
	s, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	return s
}

func newRequest() *http.Request {
	return httptest.NewRequest(http.MethodGet, "/", nil) // RemoteAddr 192.0.2.1:1234
}

// typedNilStore is a nil *MemoryStore passed as a Store: not nil as an
// interface, but its first Take would panic.
var typedNilStore ratelimit.Store = (*ratelimit.MemoryStore)(nil)

func TestNewValidation(t *testing.T) {
	const namingRule = `slowdown: WithName: name must be printable ASCII without '"' or '\'`
	tests := []struct {
		name   string
		after  int
		window time.Duration
		opts   []Option
		want   string // "" means New must succeed
	}{
		{name: "defaults", after: 10, window: time.Minute},
		{name: "after zero", after: 0, window: time.Minute},
		{name: "negative after", after: -1, window: time.Minute, want: "slowdown: after -1, want ≥ 0"},
		{name: "zero window", after: 1, window: 0, want: "slowdown: window 0s, want > 0"},
		{name: "negative window", after: 1, window: -time.Second, want: "slowdown: window -1s, want > 0"},
		{name: "nil option", after: 1, window: time.Minute, opts: []Option{WithStep(time.Second), nil}, want: "slowdown: nil option"},
		{name: "zero step", after: 1, window: time.Minute, opts: []Option{WithStep(0)}, want: "slowdown: WithStep: step 0s, want > 0"},
		{name: "negative step", after: 1, window: time.Minute, opts: []Option{WithStep(-time.Second)}, want: "slowdown: WithStep: step -1s, want > 0"},
		{name: "nil delay func", after: 1, window: time.Minute, opts: []Option{WithDelayFunc(nil)}, want: "slowdown: WithDelayFunc: nil function"},
		{name: "zero max delay", after: 1, window: time.Minute, opts: []Option{WithMaxDelay(0)}, want: "slowdown: WithMaxDelay: max delay 0s, want > 0"},
		{name: "zero max waiting", after: 1, window: time.Minute, opts: []Option{WithMaxWaiting(0)}, want: "slowdown: WithMaxWaiting: 0 requests, want > 0"},
		{name: "negative max waiting", after: 1, window: time.Minute, opts: []Option{WithMaxWaiting(-3)}, want: "slowdown: WithMaxWaiting: -3 requests, want > 0"},
		{name: "nil key", after: 1, window: time.Minute, opts: []Option{WithKey(nil)}, want: "slowdown: WithKey: nil KeyFunc"},
		{name: "nil store", after: 1, window: time.Minute, opts: []Option{WithStore(nil)}, want: "slowdown: WithStore: nil store"},
		{name: "typed nil store", after: 1, window: time.Minute, opts: []Option{WithStore(typedNilStore)}, want: "slowdown: WithStore: nil store"},
		{name: "nil logger", after: 1, window: time.Minute, opts: []Option{WithLogger(nil)}, want: "slowdown: WithLogger: nil logger"},
		{name: "nil skip", after: 1, window: time.Minute, opts: []Option{WithSkip(nil)}, want: "slowdown: WithSkip: nil function"},
		{name: "nil problem writer", after: 1, window: time.Minute, opts: []Option{WithProblemWriter(nil)}, want: "slowdown: WithProblemWriter: nil Writer"},
		{name: "empty name", after: 1, window: time.Minute, opts: []Option{WithName("")}, want: "slowdown: WithName: name must be 1 to 64 characters"},
		{name: "long name", after: 1, window: time.Minute, opts: []Option{WithName(strings.Repeat("n", 65))}, want: "slowdown: WithName: name must be 1 to 64 characters"},
		{name: "quote in name", after: 1, window: time.Minute, opts: []Option{WithName(`a"b`)}, want: namingRule},
		{name: "newline in name", after: 1, window: time.Minute, opts: []Option{WithName("a\nb")}, want: namingRule},
		{name: "ietf headers", after: 1, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeadersIETF)}},
		{name: "legacy headers", after: 1, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeadersLegacy)}},
		{name: "both headers", after: 1, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeadersBoth)}},
		{name: "no headers with after 0", after: 0, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeadersNone)}},
		{name: "unknown header style", after: 1, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeaderStyle(7))},
			want: "slowdown: WithHeaders: unknown header style HeaderStyle(7)"},
		{name: "ietf headers with after 0", after: 0, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeadersIETF)},
			want: "slowdown: WithHeaders: after must be > 0 to send headers (a limit of 0 would tell clients they have no quota)"},
		{name: "legacy headers with after 0", after: 0, window: time.Minute, opts: []Option{WithHeaders(ratelimit.HeadersLegacy)},
			want: "slowdown: WithHeaders: after must be > 0 to send headers (a limit of 0 would tell clients they have no quota)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.after, tt.window, tt.opts...)
			if tt.want == "" {
				require.NoError(t, err)
				require.NotNil(t, d)
				return
			}
			assert.EqualError(t, err, tt.want, "New(%d, %v)", tt.after, tt.window)
			assert.Nil(t, d)
		})
	}
}

// TestDelaySequence checks the core: request k in the window waits
// (k−after)·step, capped, with time passed explicitly.
func TestDelaySequence(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name string
		opts []Option
		want []time.Duration // for requests 1, 2, …
	}{
		{
			name: "linear steps capped",
			opts: []Option{WithStep(100 * ms), WithMaxDelay(350 * ms)},
			want: []time.Duration{0, 0, 0, 100 * ms, 200 * ms, 300 * ms, 350 * ms, 350 * ms},
		},
		{
			name: "default step",
			want: []time.Duration{0, 0, 0, 100 * ms, 200 * ms},
		},
		{
			name: "delay func capped and floored at zero",
			opts: []Option{
				WithDelayFunc(func(over int) time.Duration {
					if over == 2 {
						return -time.Second
					}
					return time.Duration(over*over) * 10 * ms
				}),
				WithMaxDelay(200 * ms),
			},
			want: []time.Duration{0, 0, 0, 10 * ms, 0, 90 * ms, 160 * ms, 200 * ms},
		},
		{
			name: "huge count does not overflow",
			opts: []Option{WithStep(time.Duration(1 << 62)), WithMaxDelay(time.Hour)},
			want: []time.Duration{0, 0, 0, time.Hour, time.Hour},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(3, time.Minute, tt.opts...)
			require.NoError(t, err)
			now := time.Unix(1_700_000_000, 0) // window-aligned: 1.7e9 is a multiple of 60
			for i, want := range tt.want {
				got, err := d.Delay(context.Background(), "k", now)
				require.NoError(t, err)
				assert.Equal(t, want, got, "request %d: got delay %v, want %v", i+1, got, want)
			}
			other, err := d.Delay(context.Background(), "another key", now)
			require.NoError(t, err)
			assert.Zero(t, other, "keys are counted separately")
		})
	}
}

// TestHandlerSequence drives the middleware on synctest's fake clock: each
// request takes exactly its delay, the handler sees it in the context, and
// the window sliding brings the delay down again.
func TestHandlerSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00 UTC, a minute boundary.
		d, err := New(3, time.Minute, WithMaxDelay(350*time.Millisecond))
		require.NoError(t, err)
		final := &recorder{}
		h := d.Handler(final)

		do := func(step string, want time.Duration) {
			t.Helper()
			start := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest())
			took := time.Since(start)
			assert.Equal(t, http.StatusOK, rec.Code, "%s: status", step)
			assert.Equal(t, want, took, "%s: request took %v, want %v", step, took, want)
			got, ok := time.Duration(final.delay.Load()), final.ok.Load()
			assert.Equal(t, want, got, "%s: FromContext = %v, want %v", step, got, want)
			assert.Equal(t, want > 0, ok, "%s: FromContext ok = %v, want %v", step, ok, want > 0)
		}
		const ms = time.Millisecond
		for i, want := range []time.Duration{0, 0, 0, 100 * ms, 200 * ms, 300 * ms, 350 * ms, 350 * ms} {
			do("request "+strconv.Itoa(i+1), want)
		}
		// 8 requests in window 0. Halfway through window 1 they weigh 4, so
		// the next request is number 5: 200ms.
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(90 * time.Second)))
		do("halfway through the next window", 200*ms)
		// Two windows later nothing is left: request 1 again.
		time.Sleep(2 * time.Minute)
		do("after the window slid past", 0)
		assert.EqualValues(t, 10, final.calls.Load(), "handler calls")
	})
}

// TestDisconnect cancels the request context during the wait: the request
// returns at once (no fake time passes), the handler is not run, and the
// access log would see 499.
func TestDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := New(0, time.Minute, WithStep(time.Minute), WithMaxDelay(time.Hour))
		require.NoError(t, err)
		final := &recorder{}
		h := d.Handler(final)

		ctx, cancel := context.WithCancel(context.Background())
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(rec, newRequest().WithContext(ctx))
		}()
		synctest.Wait() // the request is now waiting on its timer
		require.EqualValues(t, 1, d.waiting.Load(), "requests waiting before the cancel")

		start := time.Now()
		cancel()
		<-done
		assert.Zero(t, time.Since(start), "returned after %v of fake time, want at once", time.Since(start))
		assert.Zero(t, final.calls.Load(), "handler ran after the client went away")
		assert.Equal(t, reqlog.StatusClientClosedRequest, rec.Code, "status recorded for the access log")
		assert.Empty(t, rec.Body.String(), "no body for a client that is gone")
		assert.Zero(t, d.waiting.Load(), "waiting gauge after the cancel")
	})
}

// TestDisconnectRealServer checks the same over a real connection: the
// server cancels the request context when the client closes it.
func TestDisconnectRealServer(t *testing.T) {
	// 20s: far longer than a prompt return, short enough that a broken
	// Delayer fails the test below (10s) and then lets the server close.
	d, err := New(0, time.Minute, WithStep(20*time.Second), WithMaxDelay(20*time.Second))
	require.NoError(t, err)
	final := &recorder{}
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		d.Handler(final).ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	// The request holds a waiting place from just before its wait to just
	// after it: once it has one, the client leaves.
	require.Eventually(t, func() bool { return d.waiting.Load() == 1 }, 10*time.Second, time.Millisecond,
		"the request never started waiting") // a bound on a hang, not a timing assertion
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	select {
	case <-served:
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		t.Fatal("the server handler still waits 10s after the client disconnected; want it to return at once")
	}
	assert.Zero(t, d.waiting.Load(), "waiting gauge: the wait ended")
	assert.Zero(t, final.calls.Load(), "handler ran after the client went away")
}

// TestDeadline: a timeout middleware outside owns the response when its
// deadline passes during the wait; the Delayer writes nothing.
func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := New(0, time.Minute, WithStep(time.Minute), WithMaxDelay(time.Hour))
		require.NoError(t, err)
		final := &recorder{}
		h := middleware.Timeout(5 * time.Second)(d.Handler(final))

		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest())
		assert.Equal(t, 5*time.Second, time.Since(start), "request ended at the deadline")
		assert.Equal(t, http.StatusGatewayTimeout, rec.Code, "chi's Timeout answers, not the Delayer")
		assert.Zero(t, final.calls.Load(), "handler ran after the deadline")
		assert.Zero(t, d.waiting.Load(), "waiting gauge")
	})
}

// TestMaxWaiting floods the Delayer with 1,000 concurrent requests over
// the threshold: at most MaxWaiting wait at any moment, the others are
// answered 503 at once and hold nothing.
func TestMaxWaiting(t *testing.T) {
	const (
		requests   = 1000
		maxWaiting = 50
	)
	synctest.Test(t, func(t *testing.T) {
		d, err := New(0, time.Minute, WithMaxWaiting(maxWaiting),
			WithStep(time.Millisecond), WithMaxDelay(time.Second))
		require.NoError(t, err)
		final := &recorder{}
		h := d.Handler(final)

		goroutinesBefore := runtime.NumGoroutine()
		var done atomic.Int64
		recs := make([]*httptest.ResponseRecorder, requests)
		var wg sync.WaitGroup
		for i := range requests {
			recs[i] = httptest.NewRecorder()
			wg.Go(func() {
				h.ServeHTTP(recs[i], newRequest())
				done.Add(1)
			})
		}
		// No fake time passes until every goroutine of the bubble is
		// blocked, so no wait has ended yet and none has given its place
		// back: the count of waiting requests only grew until now, and this
		// is its peak.
		synctest.Wait()
		assert.EqualValues(t, maxWaiting, d.waiting.Load(), "requests waiting while the flood is held (the peak)")
		assert.EqualValues(t, requests-maxWaiting, done.Load(), "requests answered at once")
		held := runtime.NumGoroutine() - goroutinesBefore
		assert.LessOrEqual(t, held, maxWaiting+5,
			"goroutines held during the flood: got %d, want about %d (only the waiting ones)", held, maxWaiting)

		wg.Wait() // fake time advances as the waiting requests' timers fire
		assert.Zero(t, d.waiting.Load(), "admission count after the flood")
		codes := map[int]int{}
		for _, rec := range recs {
			codes[rec.Code]++
			if rec.Code == http.StatusServiceUnavailable {
				assert.Equal(t, "1", rec.Header().Get("Retry-After"), "Retry-After of a ≤1s delay")
				assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
			}
		}
		assert.Equal(t, map[int]int{200: maxWaiting, 503: requests - maxWaiting}, codes, "statuses")
		assert.EqualValues(t, maxWaiting, final.calls.Load(), "handler calls")
	})
}

// TestOverflowResponse checks the 503's Retry-After (the delay the request
// would have waited, in seconds rounded up) and its problem body.
func TestOverflowResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := New(0, time.Minute, WithMaxWaiting(1),
			WithStep(1500*time.Millisecond), WithMaxDelay(time.Minute))
		require.NoError(t, err)
		h := d.Handler(&recorder{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go h.ServeHTTP(httptest.NewRecorder(), newRequest().WithContext(ctx)) // takes the one slot
		synctest.Wait()

		for _, want := range []string{"3", "5", "6"} { // 3s, 4.5s, 6s
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest())
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, want, rec.Header().Get("Retry-After"), "Retry-After")
			var body problem.Details
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "body %q", rec.Body.String())
			assert.Equal(t, http.StatusServiceUnavailable, body.Status)
			assert.NotEmpty(t, body.Detail)
		}
		cancel()
		synctest.Wait()
		assert.Zero(t, d.waiting.Load(), "waiting gauge")
	})
}

func TestHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := New(2, time.Minute)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		d.Handler(&recorder{}).ServeHTTP(rec, newRequest())
		assert.Equal(t, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, rec.Header(), "no headers by default")
	})
}

// TestHeadersGolden checks every style over the same requests. The
// bubble's clock starts at a minute boundary (946684800 in Unix seconds),
// so the first count is back to zero in 2 windows. Request 3 waits 1s: its
// headers leave at 1s. Request 4 is taken at 1s and waits 2s: they leave
// at 3s. t counts from when the headers leave, Reset is an instant: 120s
// after the first request.
func TestHeadersGolden(t *testing.T) {
	ietf := func(item string) http.Header {
		return http.Header{"Ratelimit-Policy": {`"slow";q=2;w=60`}, "Ratelimit": {item}}
	}
	legacy := func(remaining string) http.Header {
		return http.Header{"X-Slow-Down-Limit": {"2"}, "X-Slow-Down-Remaining": {remaining}, "X-Slow-Down-Reset": {"946684920"}}
	}
	both := func(item, remaining string) http.Header {
		h := ietf(item)
		for k, v := range legacy(remaining) {
			h[k] = v
		}
		return h
	}
	draft6 := func(remaining, reset string) http.Header {
		return http.Header{"Slow-Down-Policy": {"2;w=60"}, "Slow-Down-Limit": {"2"}, "Slow-Down-Remaining": {remaining}, "Slow-Down-Reset": {reset}}
	}
	draft7 := func(v string) http.Header {
		return http.Header{"Slow-Down-Policy": {"2;w=60"}, "Slow-Down": {v}}
	}
	tests := []struct {
		style ratelimit.HeaderStyle
		want  []http.Header // for requests 1, 2, …
	}{
		{ratelimit.HeadersDraft6, []http.Header{
			draft6("1", "120"), draft6("0", "120"), draft6("0", "119"), draft6("0", "117")}},
		{ratelimit.HeadersDraft7, []http.Header{
			draft7("limit=2, remaining=1, reset=120"), draft7("limit=2, remaining=0, reset=120"),
			draft7("limit=2, remaining=0, reset=119"), draft7("limit=2, remaining=0, reset=117")}},
		{ratelimit.HeadersIETF, []http.Header{
			ietf(`"slow";r=1;t=120`), ietf(`"slow";r=0;t=120`), ietf(`"slow";r=0;t=119`), ietf(`"slow";r=0;t=117`)}},
		{ratelimit.HeadersLegacy, []http.Header{legacy("1"), legacy("0"), legacy("0"), legacy("0")}},
		{ratelimit.HeadersBoth, []http.Header{
			both(`"slow";r=1;t=120`, "1"), both(`"slow";r=0;t=120`, "0"), both(`"slow";r=0;t=119`, "0"), both(`"slow";r=0;t=117`, "0")}},
		{ratelimit.HeadersNone, []http.Header{{}, {}, {}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.style.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, err := New(2, time.Minute, WithHeaders(tt.style), WithName("slow"), WithStep(time.Second))
				require.NoError(t, err)
				h := d.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				for i, want := range tt.want {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, newRequest())
					assert.Equal(t, http.StatusOK, rec.Code)
					assert.Equal(t, want, rec.Header(), "request %d", i+1)
				}
			})
		})
	}
}

// TestHeadersBesideOtherPolicies: IETF items already there (another
// policy's) are kept, the Delayer's follow; the limiter's legacy trio is
// left alone.
func TestHeadersBesideOtherPolicies(t *testing.T) {
	d, err := New(2, time.Minute, WithHeaders(ratelimit.HeadersBoth), WithName("slow"))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	rec.Header().Set("RateLimit-Policy", `"default";q=100;w=60`)
	rec.Header().Set("X-RateLimit-Limit", "100")
	d.Handler(&recorder{}).ServeHTTP(rec, newRequest())
	assert.Equal(t, []string{`"default";q=100;w=60`, `"slow";q=2;w=60`}, rec.Header().Values("RateLimit-Policy"))
	assert.Equal(t, "100", rec.Header().Get("X-RateLimit-Limit"), "the limiter's legacy headers")
	assert.Equal(t, "2", rec.Header().Get("X-Slow-Down-Limit"), "the Delayer's own")
}

// TestProblemWriter: the 503 past MaxWaiting goes through the Writer, in
// the service's own JSON shape, with Retry-After and the Delayer's headers
// already on w.
func TestProblemWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gotHeader http.Header
		apiError := func(w http.ResponseWriter, r *http.Request, pd problem.Details) {
			gotHeader = w.Header().Clone()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(pd.Status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": pd.Status, "message": pd.Detail}})
		}
		d, err := New(1, time.Minute, WithMaxWaiting(1), WithStep(2*time.Second),
			WithHeaders(ratelimit.HeadersIETF), WithProblemWriter(apiError))
		require.NoError(t, err)
		h := d.Handler(&recorder{})
		h.ServeHTTP(httptest.NewRecorder(), newRequest()) // within the threshold
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go h.ServeHTTP(httptest.NewRecorder(), newRequest().WithContext(ctx)) // waits 2s in the only place
		synctest.Wait()

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest()) // would wait 4s
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		assert.JSONEq(t, `{"error":{"code":503,"message":"The server is busy slowing down other requests; retry later."}}`, rec.Body.String())
		assert.Equal(t, "4", gotHeader.Get("Retry-After"), "Retry-After set before the Writer ran")
		assert.Equal(t, `"slowdown";r=0;t=116`, gotHeader.Get("RateLimit"), "RateLimit set before the Writer ran")
		cancel()
		synctest.Wait()
	})
}

// TestLoggerDefaultsToSlogDefault: without WithLogger, errors go to
// slog.Default() as it is when they happen, not as it was at New.
func TestLoggerDefaultsToSlogDefault(t *testing.T) {
	d, err := New(0, time.Minute, WithStore(failingStore{errors.New("connection refused")}))
	require.NoError(t, err)
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)
	rec := httptest.NewRecorder()
	d.Handler(&recorder{}).ServeHTTP(rec, newRequest())
	assert.Equal(t, http.StatusOK, rec.Code, "fail open")
	assert.Contains(t, logs.String(), "store failed", "the default logger set after New")
}

// failingStore fails every take, as a store whose backend is down does.
type failingStore struct{ err error }

func (s failingStore) Take(context.Context, ratelimit.Policy, string, time.Time, int) (ratelimit.Window, error) {
	return ratelimit.Window{}, s.err
}

func (s failingStore) TakeAll(context.Context, []ratelimit.Policy, string, time.Time, int, []ratelimit.Window) (bool, error) {
	return false, s.err
}

func (s failingStore) Refund(context.Context, []ratelimit.Policy, string, int, []ratelimit.Window) error {
	return s.err
}

func (s failingStore) Peek(context.Context, []ratelimit.Policy, string, time.Time, []ratelimit.Window) error {
	return s.err
}

func (s failingStore) Reset(context.Context, []ratelimit.Policy, string) error { return s.err }

func TestFailOpen(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantLog string // "" means no log line
	}{
		{name: "store error", opts: []Option{WithStore(failingStore{errors.New("connection refused")})},
			wantLog: "store failed"},
		{name: "request without key", opts: []Option{WithKey(ratelimit.KeyByHeader("X-Api-Key"))}},
		{name: "misconfigured key", opts: []Option{WithKey(ratelimit.KeyByIPPrefix(0, 0))},
			wantLog: "key function failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := append([]Option{WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, tt.opts...)
			d, err := New(0, time.Minute, opts...)
			require.NoError(t, err)
			final := &recorder{}
			h := d.Handler(final)
			for range 5 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, newRequest())
				assert.Equal(t, http.StatusOK, rec.Code)
				assert.False(t, final.ok.Load(), "request was delayed, want passed on at once")
			}
			assert.EqualValues(t, 5, final.calls.Load(), "handler calls")
			if tt.wantLog == "" {
				assert.Empty(t, logs.String(), "log")
				return
			}
			assert.Equal(t, 1, strings.Count(logs.String(), "\n"), "log lines for 5 errors: got %q, want one", logs.String())
			assert.Contains(t, logs.String(), tt.wantLog)
			assert.Contains(t, logs.String(), "policy=slowdown")
		})
	}
}

// leavingStore is a store during whose take the client goes away: it
// cancels the request's context, then answers with err, or with what the
// store it wraps answers when err is nil.
type leavingStore struct {
	ratelimit.Store
	cancel context.CancelFunc
	err    error
}

func (s *leavingStore) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	s.cancel()
	if s.err != nil {
		return ratelimit.Window{}, s.err
	}
	return s.Store.Take(ctx, p, key, now, n)
}

// TestClientGoneNeverPassedOn: a request whose context is done once the
// store has answered is never passed on, whatever the store answered and
// whether or not it was to be delayed: not on a store error it caused
// itself (failing open would serve it uncounted by a limiter behind on
// the same store), and not after a successful take. A client that left
// gets 499; under a deadline the timeout middleware outside answers.
// Nothing is reported as a store failure.
func TestClientGoneNeverPassedOn(t *testing.T) {
	tests := []struct {
		name     string
		after    int
		store    func(cancel context.CancelFunc) ratelimit.Store
		cancel   bool // before the request
		deadline bool // a deadline already past, under chi's Timeout
		want     int
	}{
		{name: "cancelled, store error", cancel: true,
			store: func(context.CancelFunc) ratelimit.Store { return failingStore{context.Canceled} }, want: 499},
		{name: "cancelled, under the threshold", after: 100, cancel: true,
			store: func(context.CancelFunc) ratelimit.Store { return newMemoryStore(t) }, want: 499},
		{name: "cancelled, over the threshold", cancel: true,
			store: func(context.CancelFunc) ratelimit.Store { return newMemoryStore(t) }, want: 499},
		{name: "left during the take, store error",
			store: func(c context.CancelFunc) ratelimit.Store { return &leavingStore{cancel: c, err: context.Canceled} }, want: 499},
		{name: "left during the take, under the threshold", after: 100,
			store: func(c context.CancelFunc) ratelimit.Store {
				return &leavingStore{Store: newMemoryStore(t), cancel: c}
			}, want: 499},
		{name: "deadline passed, store error", deadline: true,
			store: func(context.CancelFunc) ratelimit.Store { return failingStore{context.DeadlineExceeded} },
			want:  http.StatusGatewayTimeout},
		{name: "deadline passed, under the threshold", after: 100, deadline: true,
			store: func(context.CancelFunc) ratelimit.Store { return newMemoryStore(t) },
			want:  http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d, err := New(tt.after, time.Minute, WithStore(tt.store(cancel)), WithStep(time.Hour), WithMaxDelay(time.Hour),
				WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			if tt.cancel {
				cancel()
			}
			final := &recorder{}
			var h http.Handler = d.Handler(final)
			if tt.deadline {
				h = middleware.Timeout(-time.Second)(h)
			}
			for i := range 5 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, newRequest().WithContext(ctx))
				assert.Equal(t, tt.want, rec.Code, "request %d: status", i+1)
				assert.Empty(t, rec.Body.String(), "request %d: body", i+1)
			}
			assert.Zero(t, final.calls.Load(), "handler calls for requests whose client had left")
			assert.Empty(t, logs.String(), "log: a request cut short is not a store failure")
			assert.Zero(t, d.waiting.Load(), "waiting gauge")
		})
	}
}

// countingStore counts the takes that reach the store it wraps.
type countingStore struct {
	ratelimit.Store
	takes atomic.Int64
}

func (s *countingStore) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	s.takes.Add(1)
	return s.Store.Take(ctx, p, key, now, n)
}

func TestSkip(t *testing.T) {
	store := &countingStore{Store: newMemoryStore(t)}
	d, err := New(0, time.Minute, WithStore(store), WithStep(time.Nanosecond),
		WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	require.NoError(t, err)
	final := &recorder{}
	h := d.Handler(final)
	for _, path := range []string{"/healthz", "/healthz", "/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, http.StatusOK, rec.Code, path)
	}
	assert.EqualValues(t, 3, final.calls.Load(), "handler calls")
	assert.EqualValues(t, 1, store.takes.Load(), "takes: skipped requests must not be counted")
}

func TestFromContextWithoutDelayer(t *testing.T) {
	d, ok := FromContext(context.Background())
	assert.Zero(t, d)
	assert.False(t, ok)
}

func TestPolicy(t *testing.T) {
	d, err := New(5, time.Minute, WithName("burst"))
	require.NoError(t, err)
	p := d.Policy()
	assert.Equal(t, "burst", p.Name)
	assert.Equal(t, time.Minute, p.Window)
	assert.NoError(t, p.Valid())
	assert.Greater(t, p.Limit, 1<<30, "limit so large that the store counts every request")
}

// BenchmarkUnderThreshold is the common case: a request within the
// threshold through Delayer.Handler with the default MemoryStore and
// KeyByIP. Each parallel worker is its own client.
func BenchmarkUnderThreshold(b *testing.B) {
	d, err := New(1<<30, time.Minute)
	require.NoError(b, err)
	h := d.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var client atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := newRequest()
		n := client.Add(1)
		req.RemoteAddr = "192.0.2." + strconv.Itoa(int(n%250)) + ":1234"
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkUnderThresholdHeaders is BenchmarkUnderThreshold with the
// Delayer's headers on, per style: the cost of the fields on top.
func BenchmarkUnderThresholdHeaders(b *testing.B) {
	for _, style := range []ratelimit.HeaderStyle{ratelimit.HeadersIETF, ratelimit.HeadersLegacy, ratelimit.HeadersBoth} {
		b.Run("headers="+style.String(), func(b *testing.B) {
			d, err := New(1<<30, time.Minute, WithHeaders(style))
			require.NoError(b, err)
			h := d.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			var client atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := newRequest()
				n := client.Add(1)
				req.RemoteAddr = "192.0.2." + strconv.Itoa(int(n%250)) + ":1234"
				w := httptest.NewRecorder()
				for pb.Next() {
					clear(w.Header())
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// BenchmarkOverflow is the cost of turning a request away while the
// Delayer is full (503 + problem body): what a flood costs the server.
func BenchmarkOverflow(b *testing.B) {
	d, err := New(0, time.Minute, WithMaxWaiting(1), WithStep(time.Hour), WithMaxDelay(time.Hour))
	require.NoError(b, err)
	h := d.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), newRequest().WithContext(ctx))
	}()
	b.Cleanup(func() { cancel(); <-done })
	for d.waiting.Load() < 1 { // the parked request holds the only place
		runtime.Gosched()
	}

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := newRequest()
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusServiceUnavailable {
				b.Fatalf("status %d, want 503", w.Code)
			}
		}
	})
}
