package app

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/sentryreport/sentrytest"
)

// testConfig is the default configuration with the test's overrides
// (flags) and a log directory in t.TempDir().
func testConfig(t *testing.T, args ...string) Config {
	t.Helper()
	cfg, err := ParseConfig("test", append([]string{"-log-dir", t.TempDir()}, args...), func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	return cfg
}

type running struct {
	base   string
	stdout *testenv.Buffer
	stop   func() // shuts the server down and waits; idempotent
}

// start serves cfg on a loopback port until the test ends (or stop).
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &testenv.Buffer{}
	go func() { done <- Serve(ctx, ln, cfg, out) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err, "graceful shutdown")
			case <-time.After(20 * time.Second):
				t.Error("server did not shut down")
			}
		})
	}
	t.Cleanup(stop)
	return &running{base: "http://" + ln.Addr().String(), stdout: out, stop: stop}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	return resp, string(body)
}

// TestFullStack exercises every layer of the example over real HTTP and
// checks the access log file after shutdown.
func TestFullStack(t *testing.T) {
	cfg := testConfig(t, "-rate-limit", "3", "-slow-after", "1", "-slow-step", "20ms", "-debug-panic")
	srv := start(t, cfg)

	// Static: the page and the fingerprinted bundle, precompressed.
	resp, body := get(t, srv.base+"/")
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, body, "<h1>shipshape</h1>")
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	resp, body = get(t, srv.base+"/static/app.3f9a1c2b.js", "Accept-Encoding", "gzip")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	assert.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
	assert.Empty(t, resp.Header.Get("RateLimit"), "static files are not rate-limited")
	zr, err := gzip.NewReader(strings.NewReader(body))
	require.NoError(t, err)
	js, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(js), `fetch("/api/hello"`)
	// Conditional GET of the same representation: 304.
	resp, _ = get(t, srv.base+"/static/app.3f9a1c2b.js", "Accept-Encoding", "gzip", "If-None-Match", resp.Header.Get("ETag"))
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)

	// Health checks are neither limited nor logged.
	for range 10 {
		resp, _ = get(t, srv.base+"/healthz")
		require.Equal(t, 200, resp.StatusCode)
	}

	// A panic is a 500 and the server keeps serving.
	resp, body = get(t, srv.base+"/debug/panic", "Accept", "application/json")
	assert.Equal(t, 500, resp.StatusCode)
	assert.NotContains(t, body, "on purpose", "the panic value never reaches the client")

	// 3 per window on the API alone (the page, its assets and the panic
	// above were not counted): the first answers at once, the second and
	// third are past slow-after=1 and delayed, the fourth is refused.
	start := time.Now()
	resp, body = get(t, srv.base+"/api/hello")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.JSONEq(t, `{"hello":"127.0.0.1"}`, body)
	assert.Contains(t, resp.Header.Get("RateLimit"), `"api";r=2;t=`, "the first API request of the window")
	resp, _ = get(t, srv.base+"/api/hello")
	require.Equal(t, 200, resp.StatusCode)
	resp, _ = get(t, srv.base+"/api/hello")
	require.Equal(t, 200, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "requests past slow-after are delayed")
	resp, body = get(t, srv.base+"/api/hello")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, `"api";q=3;w=60`, resp.Header.Get("RateLimit-Policy"))
	assert.Contains(t, resp.Header.Get("RateLimit"), `"api";r=0;t=`)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Contains(t, body, `"status":429`)

	srv.stop()
	logs, err := filepath.Glob(filepath.Join(cfg.LogDir, "access*.log"))
	require.NoError(t, err)
	require.Len(t, logs, 1)
	data, err := os.ReadFile(logs[0])
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	assert.Len(t, lines, 8, "one line per request, none for /healthz:\n%s", data)
	assert.Contains(t, string(data), `"GET /debug/panic HTTP/1.1" 500 `)
	assert.Contains(t, string(data), `"GET /api/hello HTTP/1.1" 429 `)
	for _, l := range lines {
		assert.True(t, strings.HasPrefix(l, "127.0.0.1 - - ["), "combined format: %q", l)
	}
	// The dev lines and the app records went to stdout.
	assert.Contains(t, srv.stdout.String(), "GET /api/hello 429")
	assert.Contains(t, srv.stdout.String(), "panic recovered")
}

// TestEveryRoutedRecordHasItsRoute: with -log-format json, every access
// record of a routed request carries http.route, although the body limit
// and StripPrefix copy the request between the access log and the router,
// and application records logged during a request carry its id and route.
func TestEveryRoutedRecordHasItsRoute(t *testing.T) {
	cfg := testConfig(t, "-log-format", "json", "-debug-panic")
	srv := start(t, cfg)
	want := map[string]string{
		"/":                       "/{$}",
		"/static/app.3f9a1c2b.js": "/static/",
		"/api/hello":              "/api/hello",
		"/debug/panic":            "/debug/panic",
	}
	for path := range want {
		resp, _ := get(t, srv.base+path)
		require.NotZero(t, resp.StatusCode)
	}
	resp, err := http.Post(srv.base+"/api/echo", "application/json", strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	resp.Body.Close()
	want["/api/echo"] = "/api/echo"
	srv.stop()

	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(srv.stdout.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "line %q", line)
		path, _ := rec["url.path"].(string)
		route, _ := rec["http.route"].(string)
		switch rec["msg"] {
		case "http request":
			seen[path] = route
		case "panic recovered":
			assert.Equal(t, "/debug/panic", route, "the panic record has the route")
			assert.NotEmpty(t, rec["http.request.id"], "the panic record has the request id")
		}
	}
	assert.Equal(t, want, seen, "http.route of each access record")
}

func TestBodyLimitAndEcho(t *testing.T) {
	srv := start(t, testConfig(t, "-max-body", "64"))
	post := func(body string) (int, string) {
		resp, err := http.Post(srv.base+"/api/echo", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	code, body := post(`{"a":1}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"echo":{"a":1}}`, body)
	code, _ = post(`{"a":"` + strings.Repeat("x", 100) + `"}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	code, _ = post(`{`)
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestStreamFlushesEvents(t *testing.T) {
	srv := start(t, testConfig(t))
	resp, err := http.Get(srv.base + "/api/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	// The first event arrives before the stream ends: it was flushed.
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	require.NoError(t, err)
	assert.Contains(t, string(buf[:n]), "data: tick 0")
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(string(rest), "data: tick"))
}

// TestSentryReportsPanic points the server at a loopback Sentry that
// decodes what the real SDK sends.
func TestSentryReportsPanic(t *testing.T) {
	sentrySrv := sentrytest.NewServer(t)
	cfg := testConfig(t, "-debug-panic", "-sentry-dsn", sentrySrv.DSN(), "-log-format", "json")
	srv := start(t, cfg)
	resp, _ := get(t, srv.base+"/debug/panic", "Cookie", "session=secret")
	require.Equal(t, 500, resp.StatusCode)
	resp, _ = get(t, srv.base+"/api/hello")
	require.Equal(t, 200, resp.StatusCode, "still serving")
	srv.stop() // flushes Sentry
	events := sentrySrv.Events()
	require.Len(t, events, 1, "one event per panic")
	ev := events[0]
	require.NotEmpty(t, ev.Exception)
	assert.Contains(t, ev.Exception[len(ev.Exception)-1].Value, "debug: panic on purpose")
	assert.Equal(t, "GET /debug/panic", ev.Transaction)
	require.NotNil(t, ev.Request)
	assert.Empty(t, ev.Request.Cookies, "cookies are scrubbed")
	// The access log line links to the event.
	assert.Contains(t, srv.stdout.String(), string(ev.EventID))
}

// TestRedisSharesLimitAcrossProcesses runs two instances of the server on
// one Redis: the limit holds for the pair.
func TestRedisSharesLimitAcrossProcesses(t *testing.T) {
	rds := testenv.StartRedis(t)
	url := "redis://" + rds.Addr + "/0"
	a := start(t, testConfig(t, "-rate-limit", "10", "-slow-after", "0", "-redis-url", url))
	b := start(t, testConfig(t, "-rate-limit", "10", "-slow-after", "0", "-redis-url", url))
	ok := 0
	for i := range 30 {
		base := a.base
		if i%2 == 1 {
			base = b.base
		}
		resp, _ := get(t, base+"/api/hello")
		switch resp.StatusCode {
		case 200:
			ok++
		case 429:
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	assert.Equal(t, 10, ok, "two servers on one Redis admit the limit once")
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"RATE_LIMIT": "7", "TRUSTED_PROXIES": " 10.0.0.0/8 , ,::1/128", "LOG_FORMAT": "json"}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseConfig("test", nil, getenv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.Limit)
	assert.Equal(t, 3, cfg.SlowAfter, "slow-down starts at half the limit by default")
	assert.Equal(t, time.Minute, cfg.Window)
	assert.Equal(t, "json", cfg.LogFormat)
	assert.Equal(t, []string{"10.0.0.0/8", "::1/128"}, cfg.TrustedProxies)

	cfg, err = ParseConfig("test", []string{"-rate-limit", "9"}, getenv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 9, cfg.Limit, "flags override the environment")

	for _, bad := range [][]string{{"-rate-limit", "x"}, {"-log-format", "xml"}, {"extra"}, {"-trusted-proxies", "10.0.0.1"}, {"-trusted-proxies", "nginx"}} {
		_, err = ParseConfig("test", bad, func(string) string { return "" }, io.Discard)
		assert.Error(t, err, "%v", bad)
	}
	_, err = ParseConfig("test", nil, func(k string) string { return map[string]string{"RATE_WINDOW": "soon"}[k] }, io.Discard)
	assert.ErrorContains(t, err, "RATE_WINDOW")
}

func TestBadConfigIsAnError(t *testing.T) {
	for _, args := range [][]string{{"-rate-limit", "0"}, {"-redis-url", "mysql://x"}, {"-sentry-dsn", "not a dsn"},
		{"-rate-window", "-1s"}, {"-slow-step", "0s"}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		// A configuration that wrongly passes would serve until the
		// deadline and return nil.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = Serve(ctx, ln, testConfig(t, args...), io.Discard)
		cancel()
		assert.Error(t, err, "%v", args)
	}
	for _, args := range [][]string{{"-slow-after", "-2"}, {"-slow-after", "100", "-rate-limit", "100"}} {
		_, err := ParseConfig("test", args, func(string) string { return "" }, io.Discard)
		assert.Error(t, err, "%v", args)
	}
}

func TestHealthCheckMode(t *testing.T) {
	srv := start(t, testConfig(t))
	assert.Equal(t, 0, HealthCheck(srv.base+"/healthz"))
	assert.Equal(t, 1, HealthCheck(srv.base+"/nope"))
	assert.Equal(t, 1, HealthCheck("http://127.0.0.1:1/healthz"))
}

func ExampleParseConfig() {
	cfg, err := ParseConfig("server", []string{"-rate-limit", "10"}, func(string) string { return "" }, io.Discard)
	fmt.Println(cfg.Limit, cfg.SlowAfter, cfg.Window, err)
	_, err = ParseConfig("server", []string{"-h"}, func(string) string { return "" }, io.Discard)
	fmt.Println(err)
	// Output:
	// 10 5 1m0s <nil>
	// flag: help requested
}

// TestConnLimitExemptsTheProxy: the per-IP connection cap resets a client's
// extra connections, but not the trusted proxy's, which carry everyone's
// requests.
func TestConnLimitExemptsTheProxy(t *testing.T) {
	srv := start(t, testConfig(t, "-max-conns-per-ip", "2", "-trusted-proxies", "127.0.0.1/32", "-log-format", "none"))
	addr := srv.base[len("http://"):]
	// Four connections open at once from one address; a refused one may
	// fail at dial (the reset arrives first) or at the request.
	open := func(from string) []net.Conn {
		var conns []net.Conn
		for range 4 {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp", addr)
			if err == nil {
				t.Cleanup(func() { c.Close() })
			}
			conns = append(conns, c)
		}
		return conns
	}
	served := func(c net.Conn) bool {
		if c == nil {
			return false
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		buf := make([]byte, 12)
		_, err := io.ReadFull(c, buf)
		return err == nil && string(buf) == "HTTP/1.1 200"
	}
	for i, c := range open("127.0.0.1") {
		assert.True(t, served(c), "proxy connection %d", i+1)
	}
	n := 0
	for _, c := range open("127.0.0.2") {
		if served(c) {
			n++
		}
	}
	assert.Equal(t, 2, n, "a client gets its cap")
}
