package slowdown_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
	"github.com/shipshape-go/shipshape/slowdown"
)

// limiterCount is the limiter's count for a request it admitted: its limit
// minus the r of its RateLimit item.
func limiterCount(t *testing.T, h http.Header, name string, limit int) int {
	t.Helper()
	for _, v := range h.Values("RateLimit") {
		if rest, ok := strings.CutPrefix(v, `"`+name+`";r=`); ok {
			r, err := strconv.Atoi(rest[:strings.IndexByte(rest, ';')])
			require.NoError(t, err, "RateLimit %q", v)
			return limit - r
		}
	}
	t.Fatalf("no RateLimit item for %q in %q", name, h.Values("RateLimit"))
	return 0
}

// TestComposeWithLimiter puts a Delayer in front of a Limiter on one
// MemoryStore and one KeyFunc, in the recommended order. With after = 0
// and a 1ms step a request's delay in ms is its count, so the two counts
// can be compared request by request, also while the previous window
// slides out and the sliding-window estimate is fractional.
func TestComposeWithLimiter(t *testing.T) {
	const limit = 6
	synctest.Test(t, func(t *testing.T) {
		store, err := ratelimit.NewMemoryStore()
		require.NoError(t, err)
		slow, err := slowdown.New(0, time.Minute, slowdown.WithStore(store),
			slowdown.WithKey(ratelimit.KeyByIP),
			slowdown.WithStep(time.Millisecond), slowdown.WithMaxDelay(time.Hour))
		require.NoError(t, err)
		lim, err := ratelimit.New(limit, time.Minute, ratelimit.WithStore(store),
			ratelimit.WithKey(ratelimit.KeyByIP))
		require.NoError(t, err)

		var slowK, limK int
		h := slow.Handler(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, _ := slowdown.FromContext(r.Context())
			slowK = int(d / time.Millisecond)
			limK = limiterCount(t, w.Header(), "default", limit)
		})))
		do := func() (code int, took time.Duration) {
			slowK, limK = -1, -1
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			return rec.Code, time.Since(start)
		}

		// Window 0 (the bubble starts on a minute boundary): counts 1–5.
		for want := 1; want <= 5; want++ {
			code, _ := do()
			require.Equal(t, http.StatusOK, code, "request %d", want)
			assert.Equal(t, want, slowK, "Delayer's count for request %d", want)
			assert.Equal(t, want, limK, "Limiter's count for request %d", want)
		}

		// 20s into window 1 the 5 earlier requests weigh 5·40/60 ≈ 3.33:
		// the next requests are estimated at 4.33 and 5.33, counted 5 and 6
		// by both (the limiter's Remaining rounds the same way).
		time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(80 * time.Second)))
		for _, want := range []int{5, 6} {
			code, _ := do()
			require.Equal(t, http.StatusOK, code, "count %d", want)
			assert.Equal(t, want, slowK, "Delayer's count with a fractional estimate")
			assert.Equal(t, want, limK, "Limiter's count with a fractional estimate")
		}

		// Past the limit the Delayer still counts and delays, then the
		// limiter refuses: the tarpit.
		for _, want := range []int{7, 8} {
			code, took := do()
			assert.Equal(t, http.StatusTooManyRequests, code, "request %d past the limit", want)
			assert.Equal(t, time.Duration(want)*time.Millisecond, took, "delay before the 429")
		}
	})
}

// TestComposeHeaders: with headers on in both, a response carries one
// RateLimit-Policy and one RateLimit item per policy.
func TestComposeHeaders(t *testing.T) {
	store, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	slow, err := slowdown.New(2, time.Minute, slowdown.WithStore(store),
		slowdown.WithHeaders(ratelimit.HeadersIETF))
	require.NoError(t, err)
	lim, err := ratelimit.New(10, time.Minute, ratelimit.WithStore(store))
	require.NoError(t, err)
	h := slow.Handler(lim.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.ElementsMatch(t, []string{`"slowdown";q=2;w=60`, `"default";q=10;w=60`},
		rec.Header().Values("RateLimit-Policy"), "RateLimit-Policy items")
	items := rec.Header().Values("RateLimit")
	assert.Len(t, items, 2, "RateLimit items: %q", items)
	assert.Empty(t, rec.Header().Values("Retry-After"), "no Retry-After on a 200")
}
