package ratelimitheader

import (
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// at is a second boundary; the legacy Reset of at+110s is 1767225710.
var at = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestPolicySetGolden writes every style for both kinds of policy, with a
// short name (the IETF fast path) and a long one, for one quota and for
// two, with the configured limits and with a response's own.
func TestPolicySetGolden(t *testing.T) {
	long := strings.Repeat("n", 64)
	api := []Quota{{"api", 100, time.Minute}}
	two := []Quota{{"burst", 10, time.Second}, {"hour", 1000, time.Hour}}
	tests := []struct {
		name   string
		style  Style
		names  Names
		quotas []Quota
		limits []int // nil: the quotas'
		i      int   // the quota described
		want   http.Header
	}{
		{"ietf", IETF, RateLimitNames, api, nil, 0, http.Header{
			"Ratelimit-Policy": {`"api";q=100;w=60`},
			"Ratelimit":        {`"api";r=42;t=110`},
		}},
		{"ietf, long name", IETF, RateLimitNames, []Quota{{long, 100, time.Minute}}, nil, 0, http.Header{
			"Ratelimit-Policy": {`"` + long + `";q=100;w=60`},
			"Ratelimit":        {`"` + long + `";r=42;t=110`},
		}},
		{"ietf, limit of the response", IETF, RateLimitNames, api, []int{500}, 0, http.Header{
			"Ratelimit-Policy": {`"api";q=500;w=60`},
			"Ratelimit":        {`"api";r=42;t=110`},
		}},
		{"ietf, two quotas", IETF, RateLimitNames, two, nil, 1, http.Header{
			"Ratelimit-Policy": {`"burst";q=10;w=1, "hour";q=1000;w=3600`},
			"Ratelimit":        {`"hour";r=42;t=110`},
		}},
		{"ietf, two quotas, limits of the response", IETF, RateLimitNames, two, []int{20, 2000}, 0, http.Header{
			"Ratelimit-Policy": {`"burst";q=20;w=1, "hour";q=2000;w=3600`},
			"Ratelimit":        {`"burst";r=42;t=110`},
		}},
		{"legacy", Legacy, RateLimitNames, api, nil, 0, http.Header{
			"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"1767225710"},
		}},
		{"legacy, two quotas", Legacy, RateLimitNames, two, nil, 1, http.Header{
			"X-Ratelimit-Limit": {"1000"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"1767225710"},
		}},
		{"legacy, limit of the response", Legacy, RateLimitNames, api, []int{7}, 0, http.Header{
			"X-Ratelimit-Limit": {"7"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"1767225710"},
		}},
		{"legacy, slowdown names", Legacy, SlowDownNames, []Quota{{"slowdown", 100, time.Minute}}, nil, 0, http.Header{
			"X-Slow-Down-Limit": {"100"}, "X-Slow-Down-Remaining": {"42"}, "X-Slow-Down-Reset": {"1767225710"},
		}},
		{"both", Both, RateLimitNames, api, nil, 0, http.Header{
			"Ratelimit-Policy":  {`"api";q=100;w=60`},
			"Ratelimit":         {`"api";r=42;t=110`},
			"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"1767225710"},
		}},
		{"both, long name", Both, SlowDownNames, []Quota{{long, 100, time.Minute}}, nil, 0, http.Header{
			"Ratelimit-Policy":  {`"` + long + `";q=100;w=60`},
			"Ratelimit":         {`"` + long + `";r=42;t=110`},
			"X-Slow-Down-Limit": {"100"}, "X-Slow-Down-Remaining": {"42"}, "X-Slow-Down-Reset": {"1767225710"},
		}},
		{"draft-6", Draft6, RateLimitNames, api, nil, 0, http.Header{
			"Ratelimit-Policy": {"100;w=60"}, "Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"42"}, "Ratelimit-Reset": {"110"},
		}},
		{"draft-6, two quotas", Draft6, RateLimitNames, two, nil, 0, http.Header{
			"Ratelimit-Policy": {"10;w=1, 1000;w=3600"}, "Ratelimit-Limit": {"10"}, "Ratelimit-Remaining": {"42"}, "Ratelimit-Reset": {"110"},
		}},
		{"draft-6, limits of the response", Draft6, RateLimitNames, two, []int{20, 2000}, 1, http.Header{
			"Ratelimit-Policy": {"20;w=1, 2000;w=3600"}, "Ratelimit-Limit": {"2000"}, "Ratelimit-Remaining": {"42"}, "Ratelimit-Reset": {"110"},
		}},
		{"draft-6, slowdown names", Draft6, SlowDownNames, []Quota{{"slowdown", 50, time.Minute}}, nil, 0, http.Header{
			"Slow-Down-Policy": {"50;w=60"}, "Slow-Down-Limit": {"50"}, "Slow-Down-Remaining": {"42"}, "Slow-Down-Reset": {"110"},
		}},
		{"draft-7", Draft7, RateLimitNames, api, nil, 0, http.Header{
			"Ratelimit-Policy": {"100;w=60"}, "Ratelimit": {"limit=100, remaining=42, reset=110"},
		}},
		{"draft-7, two quotas", Draft7, RateLimitNames, two, nil, 1, http.Header{
			"Ratelimit-Policy": {"10;w=1, 1000;w=3600"}, "Ratelimit": {"limit=1000, remaining=42, reset=110"},
		}},
		{"draft-7, limit of the response", Draft7, RateLimitNames, api, []int{5}, 0, http.Header{
			"Ratelimit-Policy": {"5;w=60"}, "Ratelimit": {"limit=5, remaining=42, reset=110"},
		}},
		{"draft-7, slowdown names", Draft7, SlowDownNames, []Quota{{"slowdown", 50, time.Minute}}, nil, 0, http.Header{
			"Slow-Down-Policy": {"50;w=60"}, "Slow-Down": {"limit=50, remaining=42, reset=110"},
		}},
		{"none", None, RateLimitNames, api, nil, 0, http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(tt.style, tt.names, tt.quotas...)
			h := http.Header{}
			p.Set(h, tt.limits, tt.i, 42, 110*time.Second, at)
			assert.Equal(t, tt.want, h)
		})
	}
}

func TestPolicySetRoundsUp(t *testing.T) {
	p := NewPolicy(Both, RateLimitNames, Quota{"p", 5, 1500 * time.Millisecond})
	h := http.Header{}
	p.Set(h, nil, 0, 0, 2*time.Second+time.Nanosecond, at.Add(time.Nanosecond))
	assert.Equal(t, `"p";q=5;w=2`, h.Get("RateLimit-Policy"), "w rounded up")
	assert.Equal(t, `"p";r=0;t=3`, h.Get("RateLimit"), "t rounded up")
	assert.Equal(t, "1767225603", h.Get("X-RateLimit-Reset"), "Reset rounded up to the next second")
}

// TestPolicySetAddsToLists: two policies on one response, as a Delayer in
// front of a Limiter writes them: the IETF items of both, in order, and
// the legacy trio of each under its own names.
func TestPolicySetAddsToLists(t *testing.T) {
	slow := NewPolicy(Both, SlowDownNames, Quota{"slowdown", 50, time.Minute})
	limit := NewPolicy(Both, RateLimitNames, Quota{"api", 100, time.Minute})
	h := http.Header{}
	slow.Set(h, nil, 0, 7, 60*time.Second, at)
	limit.Set(h, nil, 0, 57, 60*time.Second, at)
	assert.Equal(t, []string{`"slowdown";q=50;w=60`, `"api";q=100;w=60`}, h.Values("RateLimit-Policy"))
	assert.Equal(t, []string{`"slowdown";r=7;t=60`, `"api";r=57;t=60`}, h.Values("RateLimit"))
	assert.Equal(t, "50", h.Get("X-Slow-Down-Limit"))
	assert.Equal(t, "100", h.Get("X-Ratelimit-Limit"))

	// The legacy trio of one policy is replaced, not listed.
	limit.Set(h, nil, 0, 56, 60*time.Second, at)
	assert.Equal(t, []string{"56"}, h.Values("X-RateLimit-Remaining"))
}

// TestPolicySetValuesAreNotShared: a handler that edits a value in place
// changes neither another response's values nor the prepared ones.
func TestPolicySetValuesAreNotShared(t *testing.T) {
	for _, style := range []Style{IETF, Both} {
		p := NewPolicy(style, RateLimitNames, Quota{"api", 100, time.Minute})
		first := http.Header{}
		p.Set(first, nil, 0, 1, time.Second, at)
		first["Ratelimit-Policy"][0] = "tampered"
		first["Ratelimit"][0] = "tampered"
		if style == Both {
			first["X-Ratelimit-Limit"][0] = "tampered"
		}
		second := http.Header{}
		p.Set(second, nil, 0, 1, time.Second, at)
		assert.Equal(t, `"api";q=100;w=60`, second.Get("RateLimit-Policy"), "%v", style)
		assert.Equal(t, `"api";r=1;t=1`, second.Get("RateLimit"), "%v", style)
		if style == Both {
			assert.Equal(t, "100", second.Get("X-RateLimit-Limit"), "%v", style)
		}
	}
}

func TestStyle(t *testing.T) {
	for s, want := range map[Style]string{IETF: "ietf", Legacy: "legacy", Both: "both", None: "none", Draft6: "draft-6", Draft7: "draft-7", 9: "Style(9)", -1: "Style(-1)"} {
		assert.Equal(t, want, s.String())
		assert.Equal(t, !strings.HasPrefix(want, "Style("), s.Valid(), "%v valid", s)
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		d          time.Duration
		ceil       int64
		retryAfter string
	}{
		{0, 0, "1"},
		{time.Nanosecond, 1, "1"},
		{time.Second, 1, "1"},
		{time.Second + time.Nanosecond, 2, "2"},
		{90 * time.Second, 90, "90"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ceil, CeilSeconds(tt.d), "CeilSeconds(%v)", tt.d)
		h := http.Header{}
		SetRetryAfter(h, tt.d)
		assert.Equal(t, tt.retryAfter, h.Get("Retry-After"), "Retry-After for %v", tt.d)
	}
}

func TestValidName(t *testing.T) {
	for _, good := range []string{"api-v2.login", "a", strings.Repeat("x", 64), "with space"} {
		assert.NoError(t, ValidName(good), "%q", good)
	}
	tests := []struct{ name, want string }{
		{"", "name must be 1 to 64 characters"},
		{strings.Repeat("x", 65), "name must be 1 to 64 characters"},
		{`a"b`, `name must be printable ASCII without '"' or '\'`},
		{`a\b`, `name must be printable ASCII without '"' or '\'`},
		{"a\nb", `name must be printable ASCII without '"' or '\'`},
		{"é", `name must be printable ASCII without '"' or '\'`},
	}
	for _, tt := range tests {
		assert.EqualError(t, ValidName(tt.name), tt.want, "%q", tt.name)
	}
}

// BenchmarkPolicySet is one response's fields for each style, the cost
// every Limiter and Delayer response pays:
//
//	go test -run '^$' -bench PolicySet -benchmem ./internal/ratelimitheader
func BenchmarkPolicySet(b *testing.B) {
	for _, style := range []Style{IETF, Legacy, Both, None, Draft6, Draft7} {
		b.Run(style.String(), func(b *testing.B) {
			p := NewPolicy(style, RateLimitNames, Quota{"api", 100, time.Minute})
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				clear(h)
				p.Set(h, nil, 0, 42, 17*time.Second, at)
			}
		})
	}
}

// FuzzAppendInt: the in-place formatter writes what strconv writes.
func FuzzAppendInt(f *testing.F) {
	for _, v := range []int64{0, 1, 9, 10, 99, 100, 101, 999, 1000, 1 << 30, 1e9 - 1, 1e9, -1, -100, math.MaxInt64, math.MinInt64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v int64) {
		for _, c := range []int{2, 64} { // no room: strconv; room: in place
			prefix := append(make([]byte, 0, c), "r="...)
			if got, want := string(appendInt(prefix, v)), "r="+strconv.FormatInt(v, 10); got != want {
				t.Fatalf("appendInt(%d) with cap %d = %q, want %q", v, c, got, want)
			}
		}
	})
}

// TestPolicySetItemBuffers: the IETF item of one quota is formatted into
// the smallest buffer that holds every item the quota can have, in one
// allocation of that size, and values past what the buffer was sized for
// (a caller's remaining above the limit, a reset beyond two windows) are
// still written exactly.
func TestPolicySetItemBuffers(t *testing.T) {
	tests := []struct {
		name    string
		quota   Quota
		wantBuf int
		bytes   float64 // of the one allocation
	}{
		{"short name", Quota{"default", 1 << 30, time.Minute}, ietfBufSmall, 64},
		{"medium name", Quota{"login-attempts-per-ip", 1 << 30, time.Minute}, ietfBufMedium, 80},
		{"longest name", Quota{strings.Repeat("n", 64), math.MaxInt32, 24 * time.Hour}, 0, 0},
		{"long name", Quota{strings.Repeat("n", 50), 100, time.Minute}, ietfBufLarge, 112},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(IETF, RateLimitNames, tt.quota)
			assert.Equal(t, tt.wantBuf, p.itemBuf, "buffer")
			name := tt.quota.Name
			for _, c := range []struct {
				remaining int
				reset     time.Duration
			}{
				{tt.quota.Limit, 2 * tt.quota.Window}, // the largest values the buffer was sized for
				{0, 0},
				{math.MaxInt, 1<<63 - 1}, // beyond them
			} {
				h := http.Header{}
				p.Set(h, nil, 0, c.remaining, c.reset, at)
				want := `"` + name + `";r=` + strconv.Itoa(c.remaining) + ";t=" + strconv.FormatInt(CeilSeconds(c.reset), 10)
				assert.Equal(t, want, h.Get(RateLimitKey))
				assert.Equal(t, `"`+name+`";q=`+strconv.Itoa(tt.quota.Limit)+";w="+strconv.FormatInt(CeilSeconds(tt.quota.Window), 10), h.Get(PolicyKey))
			}
			if tt.wantBuf == 0 {
				return
			}
			h := http.Header{}
			allocs := testing.AllocsPerRun(100, func() {
				clear(h)
				p.Set(h, nil, 0, tt.quota.Limit, 2*tt.quota.Window, at)
			})
			assert.Equal(t, 1.0, allocs, "allocations per response")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			const n = 1000
			for range n {
				clear(h)
				p.Set(h, nil, 0, tt.quota.Limit, 2*tt.quota.Window, at)
			}
			runtime.ReadMemStats(&ms)
			assert.InDelta(t, tt.bytes, float64(ms.TotalAlloc-before)/n, 1, "bytes per response")
		})
	}
}
