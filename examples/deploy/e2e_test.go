package deploy

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/static"
)

// hsts is the Strict-Transport-Security value both proxies send.
const hsts = "max-age=63072000"

// proxy is a running TLS proxy in front of an app, as the checks see it.
type proxy struct {
	app       *app
	httpPort  int
	httpsPort int
	caFile    string
	// wantRedirect is the Location for GET /api/hello?x=1 on the HTTP port.
	wantRedirect string
	// checkStatic checks the static files through this proxy and returns
	// how many of its requests reached the application.
	checkStatic func(t *testing.T, c *http.Client, base string) int
	// staticFromDisk: the proxy serves /static/ itself, the application
	// never sees those requests.
	staticFromDisk bool
	// floodAllowed is how many requests in a quick burst the proxy's own
	// request-rate limit lets through; floodSent must be well above it.
	floodAllowed, floodSent int
}

// run makes every check the deploy configs promise, over HTTPS from
// 127.0.0.2, then stops the application and reads its access log. The
// subtests run in order: each request that reaches the application counts
// against its rate limit, and the access log must hold exactly those.
func (p *proxy) run(t *testing.T) {
	c := httpsClient(t, p.caFile)
	base := "https://" + testenv.Addr(p.httpsPort)
	toApp := 0 // requests that reach the application, hence lines in its log

	t.Run("TLS 1.2 and 1.3 only, AEAD suites only, HTTP/2", func(t *testing.T) {
		p.checkTLS(t)
	})

	t.Run("plain HTTP redirects to HTTPS", func(t *testing.T) {
		d := &net.Dialer{LocalAddr: localAddr, Timeout: 5 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: noRedirect}
		resp, err := hc.Get("http://" + testenv.Addr(p.httpPort) + "/api/hello?x=1")
		require.NoError(t, err)
		drain(resp)
		assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "status")
		assert.Equal(t, p.wantRedirect, resp.Header.Get("Location"), "Location")
	})

	t.Run("the application sees the client, not the proxy", func(t *testing.T) {
		toApp++
		resp := get(t, c, base+"/api/hello")
		assert.Equal(t, http.StatusOK, resp.StatusCode, "status")
		assert.Equal(t, 2, resp.ProtoMajor, "HTTP version between client and proxy: got %s, want HTTP/2", resp.Proto)
		assert.Equal(t, hsts, resp.Header.Get("Strict-Transport-Security"), "HSTS")
		assert.Equal(t, "127.0.0.2", helloIP(t, resp), "client address in /api/hello")
		r, ok := remaining(resp)
		require.True(t, ok, "RateLimit header %q", resp.Header.Get("RateLimit"))
		assert.Equal(t, rateLimit-1, r, "requests remaining after the first")
	})

	t.Run("static files compressed, with cache headers", func(t *testing.T) {
		toApp += p.checkStatic(t, c, base)
	})

	t.Run("a panic is a 500 and the server goes on", func(t *testing.T) {
		toApp += 2
		resp := get(t, c, base+"/debug/panic", "Accept", "application/json")
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "status")
		assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"), "error body type")
		assert.NotContains(t, string(body), "on purpose", "the panic value must not reach the client: %s", body)
		resp = get(t, c, base+"/api/hello")
		drain(resp)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "status of the next request")
	})

	t.Run("server-sent events are not buffered by the proxy", func(t *testing.T) {
		toApp++
		resp := get(t, c, base+"/api/stream")
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "status")
		var at []time.Time
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				at = append(at, time.Now())
			}
		}
		require.NoError(t, sc.Err())
		require.Len(t, at, 5, "events")
		// The application sends an event every 200ms; a buffering proxy
		// would deliver all five at the end, together.
		gap := at[len(at)-1].Sub(at[0])
		t.Logf("first to last event: %v", gap)
		assert.GreaterOrEqual(t, gap, 400*time.Millisecond, "time between the first and last event: got %v, want ≥ 400ms (the application sends them 200ms apart, 800ms first to last)", gap)
	})

	t.Run("a spoofed X-Forwarded-For does not change the rate-limit key", func(t *testing.T) {
		toApp += p.checkSpoofedLimit(t, c, base)
	})

	// Last of the requests: the proxy keeps refusing 127.0.0.2 for a while.
	t.Run("the proxy's flood limit refuses a burst", func(t *testing.T) {
		p.checkFlood(t, c, base)
	})

	t.Run("access log shows the client address", func(t *testing.T) {
		p.app.stop(t)
		lines := p.app.accessLog(t)
		assert.Len(t, lines, toApp, "access log lines (one per request that reached the application):\n%s", strings.Join(lines, "\n"))
		var panics, denied, static int
		for _, l := range lines {
			assert.True(t, strings.HasPrefix(l, "127.0.0.2 "), "client address in the access log: got %q, want 127.0.0.2 first", l)
			switch {
			case strings.Contains(l, `"GET /debug/panic HTTP/1.1" 500 `):
				panics++
			case strings.Contains(l, `" 429 `):
				denied++
			case strings.Contains(l, `"GET /static/`):
				static++
			}
		}
		assert.Equal(t, 1, panics, "logged panics (500)")
		assert.Equal(t, 1, denied, "logged 429s")
		if p.staticFromDisk {
			assert.Zero(t, static, "static requests that reached the application")
		} else {
			assert.NotZero(t, static, "static requests that reached the application")
		}
	})
}

// checkFlood sends floodSent requests to /healthz (which the application
// neither limits nor logs) one after the other, as fast as they go: the
// proxy's own limit must let about floodAllowed through and refuse the
// rest with 429, before the application sees them.
func (p *proxy) checkFlood(t *testing.T, c *http.Client, base string) {
	ok, denied := 0, 0
	for i := 0; i < p.floodSent; i++ {
		resp := get(t, c, base+"/healthz")
		drain(resp)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			denied++
			assert.Empty(t, resp.Header.Get("RateLimit-Policy"), "a 429 from the proxy, not from the application")
		default:
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	t.Logf("%d requests: %d passed, %d refused by the proxy", p.floodSent, ok, denied)
	// The test's earlier requests count against the same limit.
	assert.GreaterOrEqual(t, ok, p.floodAllowed-50, "requests let through: the limit must sit well above a normal client")
	assert.Positive(t, denied, "requests refused: the proxy's flood limit never acted")
}

// checkTLS dials the HTTPS port directly with several client settings.
func (p *proxy) checkTLS(t *testing.T) {
	pool := caPool(t, p.caFile)
	tests := []struct {
		name        string
		cfg         func(*tls.Config)
		wantVersion uint16 // 0: the handshake must be refused by the proxy
		wantSuite   uint16
	}{
		{name: "default client gets TLS 1.3", wantVersion: tls.VersionTLS13},
		{
			name:        "TLS 1.2 with ECDHE and AES-GCM",
			cfg:         func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 },
			wantVersion: tls.VersionTLS12,
		},
		{
			name: "TLS 1.2 with a CBC suite is refused",
			cfg: func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
			},
		},
		{
			name: "TLS 1.1 is refused",
			cfg: func(c *tls.Config) {
				c.MinVersion = tls.VersionTLS10
				c.MaxVersion = tls.VersionTLS11
			},
		},
		{
			name:        "the certificate is valid for localhost",
			cfg:         func(c *tls.Config) { c.ServerName = "localhost" },
			wantVersion: tls.VersionTLS13,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			d := &net.Dialer{LocalAddr: localAddr, Timeout: 5 * time.Second}
			conn, err := tls.DialWithDialer(d, "tcp", testenv.Addr(p.httpsPort), cfg)
			if tt.wantVersion == 0 {
				if err == nil {
					st := conn.ConnectionState()
					conn.Close()
					t.Fatalf("handshake succeeded with %s %s, want refused", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				assert.ErrorContains(t, err, "remote error", "the proxy must refuse the handshake (not the client)")
				return
			}
			require.NoError(t, err)
			defer conn.Close()
			st := conn.ConnectionState()
			assert.Equal(t, tls.VersionName(tt.wantVersion), tls.VersionName(st.Version), "TLS version")
			assert.Equal(t, "h2", st.NegotiatedProtocol, "ALPN")
			if st.Version == tls.VersionTLS12 {
				name := tls.CipherSuiteName(st.CipherSuite)
				assert.Regexp(t, `^TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_\d+_GCM_SHA\d+|CHACHA20_POLY1305_SHA256)$`, name, "TLS 1.2 suite")
			}
		})
	}
}

// checkSpoofedLimit sends requests with a different made-up
// X-Forwarded-For each until the application refuses one. Each must count
// against 127.0.0.2, the client the proxy saw: the remaining count falls by
// one every time and the 429 comes exactly when it reaches 0. It returns
// the number of requests sent.
func (p *proxy) checkSpoofedLimit(t *testing.T, c *http.Client, base string) int {
	spoofs := []string{
		"127.0.0.1", // the trusted proxy's own address
		"::1",
		"203.0.113.7, 127.0.0.1",
		"not-an-address",
		"2001:db8::1",
	}
	prev := -1
	sent := 0
	for i := 0; i <= rateLimit; i++ {
		xff := fmt.Sprintf("%d.%d.%d.%d", rand.IntN(223)+1, rand.IntN(256), rand.IntN(256), rand.IntN(254)+1)
		if i < len(spoofs) {
			xff = spoofs[i]
		}
		sent++
		resp := get(t, c, base+"/api/hello", "X-Forwarded-For", xff, "X-Real-IP", xff, "Forwarded", "for="+xff)
		if resp.StatusCode == http.StatusTooManyRequests {
			drain(resp)
			assert.Equal(t, 0, prev, "remaining before the 429: the limit must apply to 127.0.0.2 whatever X-Forwarded-For says")
			checkDenied(t, resp)
			return sent
		}
		require.Equal(t, http.StatusOK, resp.StatusCode, "status with X-Forwarded-For %q", xff)
		assert.Equal(t, "127.0.0.2", helloIP(t, resp), "client address with X-Forwarded-For %q", xff)
		r, ok := remaining(resp)
		require.True(t, ok, "RateLimit header %q", resp.Header.Get("RateLimit"))
		if prev >= 0 {
			assert.Equal(t, prev-1, r, "remaining after a request with X-Forwarded-For %q: the same key must count it", xff)
		}
		prev = r
	}
	t.Fatalf("no 429 after %d requests with spoofed X-Forwarded-For (limit %d)", sent, rateLimit)
	return sent
}

// checkDenied checks a 429 from the application's rate limiter (not the
// proxy's flood limit): the IETF RateLimit headers and Retry-After.
func checkDenied(t *testing.T, resp *http.Response) {
	t.Helper()
	assert.Equal(t, fmt.Sprintf(`"api";q=%d;w=60`, rateLimit), resp.Header.Get("RateLimit-Policy"), "RateLimit-Policy")
	rl := resp.Header.Get("RateLimit")
	m := regexp.MustCompile(`^"api";r=0;t=(\d+)$`).FindStringSubmatch(rl)
	if assert.NotNil(t, m, "RateLimit: got %q, want \"api\";r=0;t=N", rl) {
		reset, _ := strconv.Atoi(m[1])
		assert.True(t, reset >= 1 && reset <= 120, "RateLimit t: got %d, want 1..120 (two windows at most)", reset)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if assert.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After")) {
		assert.True(t, ra >= 1 && ra <= 120, "Retry-After: got %d, want 1..120 (two windows at most)", ra)
	}
	assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"), "429 body type")
	assert.Equal(t, hsts, resp.Header.Get("Strict-Transport-Security"), "HSTS on an error")
}

// checkGzipped checks a response to a request with Accept-Encoding: gzip
// for want (the file's content) and returns the compressed bytes.
func checkGzipped(t *testing.T, resp *http.Response, want []byte) []byte {
	t.Helper()
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "status")
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), "Content-Encoding")
	assert.Contains(t, strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding", "Vary")
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	zr, err := gzip.NewReader(strings.NewReader(string(raw)))
	require.NoError(t, err, "body is not gzip")
	got, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "decompressed body")
	return raw
}

// staticCacheControl is the Cache-Control the Go static package sends for
// name in dir, for comparing the proxies' rules with it.
func staticCacheControl(t *testing.T, dir, name string) string {
	t.Helper()
	fsys, err := static.Dir(dir)
	require.NoError(t, err)
	srv, err := static.New(fsys)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+name, nil))
	require.Equal(t, http.StatusOK, rec.Code, "static package status for %s", name)
	return rec.Header().Get("Cache-Control")
}

func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: localAddr, Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: caPool(t, caFile)},
		ForceAttemptHTTP2: true,
		// The tests ask for gzip themselves and look at the encoding.
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: noRedirect}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func caPool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b), "no certificate in %s", caFile)
	return pool
}

// get sends a GET with the given header name, value pairs.
func get(t *testing.T, c *http.Client, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err, "GET %s", url)
	return resp
}

// helloIP decodes /api/hello's answer and closes the body.
func helloIP(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var v struct {
		Hello string `json:"hello"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v), "/api/hello body")
	return v.Hello
}

var rateLimitItem = regexp.MustCompile(`^"api";r=(\d+);t=\d+$`)

// remaining is r in the response's RateLimit header.
func remaining(resp *http.Response) (int, bool) {
	m := rateLimitItem.FindStringSubmatch(resp.Header.Get("RateLimit"))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// staticFile is the content of a file in the static directory.
func staticFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(staticDir, name))
	require.NoError(t, err)
	return b
}
