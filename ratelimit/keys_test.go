package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyByIP(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		want   string
	}{
		{"ipv4", "192.0.2.1:1234", "192.0.2.1"},
		{"ipv4 without port", "192.0.2.1", "192.0.2.1"},
		{"ipv6 grouped by /64", "[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"same /64 same key", "[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"ipv6 without port", "2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"mapped ipv4 folds to ipv4", "[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"zone dropped", "[fe80::1%eth0]:80", "fe80::/64"},
		{"loopback v6", "[::1]:80", "::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			got, err := KeyByIP(req)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestKeyByIPErrors(t *testing.T) {
	for _, remote := range []string{"", "example.com:80", "[::1", "1.2.3:4", "01.2.3.4:5", "@"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		_, err := KeyByIP(req)
		assert.ErrorIs(t, err, ErrNoKey, "RemoteAddr %q", remote)
	}
}

func TestKeyByIPPrefix(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.77:1"
	k, err := KeyByIPPrefix(24, 48)(req)
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.0/24", k)
	req.RemoteAddr = "[2001:db8:1:2::1]:1"
	k, err = KeyByIPPrefix(24, 48)(req)
	require.NoError(t, err)
	assert.Equal(t, "2001:db8:1::/48", k)
	k, err = KeyByIPPrefix(32, 128)(req)
	require.NoError(t, err)
	assert.Equal(t, "2001:db8:1:2::1", k)

	for _, bits := range [][2]int{{0, 64}, {33, 64}, {32, 0}, {32, 129}} {
		_, err := KeyByIPPrefix(bits[0], bits[1])(req)
		require.Error(t, err, "%v", bits)
		assert.NotErrorIs(t, err, ErrNoKey, "a configuration mistake is not the client's fault")
	}
}

// TestKeyByIPBehindProxy: without a trusted proxy a spoofed X-Forwarded-For
// changes nothing; behind chi's ClientIPFromXFF with the proxy trusted, the
// forwarded client is the key.
func TestKeyByIPBehindProxy(t *testing.T) {
	keyOf := func(mw func(http.Handler) http.Handler, remote, xff string) string {
		var key string
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var err error
			key, err = KeyByIP(r)
			require.NoError(t, err)
		})
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		var handler http.Handler = h
		if mw != nil {
			handler = mw(h)
		}
		handler.ServeHTTP(httptest.NewRecorder(), req)
		return key
	}
	// No proxy middleware: the header is ignored.
	assert.Equal(t, "203.0.113.9", keyOf(nil, "203.0.113.9:5", "198.51.100.1"))
	// Proxy middleware, but the peer is not a trusted proxy: ignored.
	trustLoopback := middleware.ClientIPFromXFF("127.0.0.0/8", "::1/128")
	assert.Equal(t, "203.0.113.9", keyOf(trustLoopback, "203.0.113.9:5", "198.51.100.1"))
	// The trusted proxy forwards for the client: the client is the key.
	assert.Equal(t, "198.51.100.1", keyOf(trustLoopback, "127.0.0.1:5", "198.51.100.1"))
	// A client-supplied entry to the left of what the proxy appended is
	// not trusted: the proxy's view of the client wins.
	assert.Equal(t, "198.51.100.1", keyOf(trustLoopback, "127.0.0.1:5", "10.9.9.9, 198.51.100.1"))
	// IPv6 via the proxy is still grouped by /64, mapped folds.
	assert.Equal(t, "2001:db8:aa:bb::/64", keyOf(trustLoopback, "127.0.0.1:5", "2001:db8:aa:bb::7"))
	assert.Equal(t, "198.51.100.1", keyOf(trustLoopback, "127.0.0.1:5", "::ffff:198.51.100.1"))
}

// TestKeyByIPWhenChiSetsNoClientIP: when chi's ClientIPFromXFF cannot use
// the X-Forwarded-For of a trusted peer (garbage, ip:port, only trusted
// hops, no header at all), it fails closed and leaves no client IP in the
// context; KeyByIP then falls back to RemoteAddr, the proxy's address, so
// every such request shares the proxy's key.
func TestKeyByIPWhenChiSetsNoClientIP(t *testing.T) {
	trustLoopback := middleware.ClientIPFromXFF("127.0.0.0/8", "::1/128")
	tests := []struct {
		name string
		xff  []string // nil: no header
	}{
		{"garbage", []string{"not-an-ip"}},
		{"ip:port", []string{"198.51.100.1:4711"}},
		{"bracketed ipv6:port", []string{"[2001:db8::1]:443"}},
		{"garbage right of the client", []string{"198.51.100.1, garbage"}},
		{"only trusted hops", []string{"127.0.0.9, 127.0.0.5"}},
		{"empty", []string{""}},
		{"no header", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var key string
			var chiIP netip.Addr
			h := trustLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				chiIP = middleware.GetClientIPAddr(r.Context())
				var err error
				key, err = KeyByIP(r)
				require.NoError(t, err)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = "127.0.0.1:5" // the trusted proxy
			if tt.xff != nil {
				req.Header["X-Forwarded-For"] = tt.xff
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			assert.False(t, chiIP.IsValid(), "chi set a client IP (%v): the premise of this test no longer holds", chiIP)
			assert.Equal(t, "127.0.0.1", key, "the key is the proxy's address")
		})
	}
}

func TestKeyByHeader(t *testing.T) {
	fn := KeyByHeader("x-api-key")
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	_, err := fn(req)
	assert.ErrorIs(t, err, ErrNoKey)
	req.Header.Set("X-Api-Key", "   ")
	_, err = fn(req)
	assert.ErrorIs(t, err, ErrNoKey, "blank is missing")
	req.Header.Set("X-Api-Key", " k1 ")
	req.Header.Add("X-Api-Key", "k2")
	k, err := fn(req)
	require.NoError(t, err)
	assert.Equal(t, "k1", k)
}

func TestKeysUnambiguous(t *testing.T) {
	const (
		a = "X-A"
		b = "X-B"
	)
	fn := Keys(KeyByHeader(a), KeyByHeader(b))
	key := func(va, vb string) string {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(a, va)
		req.Header.Set(b, vb)
		k, err := fn(req)
		require.NoError(t, err)
		return k
	}
	assert.NotEqual(t, key("a|b", "c"), key("a", "b|c"))
	assert.NotEqual(t, key("a:1", "b"), key("a", "1:b"))
	assert.Equal(t, key("x", "y"), key("x", "y"))

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(a, "only a")
	_, err := fn(req)
	assert.ErrorIs(t, err, ErrNoKey, "the first error is returned")
}

// FuzzKeys feeds arbitrary RemoteAddr and header values to the key
// functions: they never panic, and errors are never empty keys passed on.
func FuzzKeys(f *testing.F) {
	for _, seed := range []string{"192.0.2.1:80", "[::1]:80", "", "[", "]:", "::ffff:1.2.3.4", "1.2.3.4:99999",
		"[fe80::1%25eth0]:1", strings.Repeat("9", 300), "\x00\xff", "1.2.3.4%eth0"} {
		f.Add(seed, seed)
	}
	fns := []KeyFunc{KeyByIP, KeyByIPPrefix(24, 48), KeyByIPPrefix(7, 127), KeyByHeader("X-Key"),
		Keys(KeyByIP, KeyByHeader("X-Key"))}
	f.Fuzz(func(t *testing.T, remote, header string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		req.Header["X-Key"] = []string{header}
		for i, fn := range fns {
			k, err := fn(req)
			if err == nil && k == "" {
				t.Fatalf("key func %d returned an empty key without error for %q / %q", i, remote, header)
			}
		}
	})
}

// FuzzIPv4Host: the fast path of KeyByIP accepts exactly the RemoteAddrs
// whose host netip parses as IPv4 and writes back unchanged, bracketed
// ones aside (they take the general path, to the same key), and returns
// that host, so it keys every client as netip would.
func FuzzIPv4Host(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.",
		".1.2.3", "1..2.3", "::1", "::ffff:1.2.3.4", "1.2.3.4%eth0", "", "0.0.0.00", "10.0.0.1 ", "1.2.3.4a",
		"1.2.3.4:80", "1.2.3.4:", "1.2.3.4:8:0", "1.2.3.4::", "[1.2.3.4]:80", "1.2.3.04:80", "1.2.3.4 :80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, ok := remoteHost(s)
		ip, err := netip.ParseAddr(host)
		want := ok && err == nil && ip.Is4() && ip.String() == host
		got, gotOK := ipv4Host(s)
		bracketed := want && s[0] == '['
		if (gotOK != want && !bracketed) || (gotOK && got != host) {
			t.Fatalf("ipv4Host(%q) = %q, %v; remoteHost and netip say %q, %v", s, got, gotOK, host, want)
		}
	})
}
