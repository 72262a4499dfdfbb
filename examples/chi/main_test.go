package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startChi runs the example with args until the test ends (or stop is
// called); stdout collects its request lines.
func startChi(t *testing.T, args ...string) (base string, stdout *testenv.Buffer, stop func()) {
	t.Helper()
	logDir := t.TempDir()
	stdout = &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan int, 1)
	args = append([]string{"-addr", "127.0.0.1:0", "-log-dir", logDir, "-log-format", "none"}, args...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, stdout, func(a string) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		base = "http://" + a
	case code := <-done:
		t.Fatalf("exited with %d before serving", code)
	case <-time.After(10 * time.Second):
		t.Fatal("not serving")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				assert.Zero(t, code, "exit code after shutdown")
			case <-time.After(15 * time.Second):
				t.Error("no shutdown")
			}
		})
	}
	t.Cleanup(stop)
	return base, stdout, stop
}

func do(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("user=a&password=b"))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestLoginHasAStricterLimit: POST /api/login refuses after -login-limit
// attempts while the rest of the API still answers, and the 429 names the
// login policy.
func TestLoginHasAStricterLimit(t *testing.T) {
	base, _, _ := startChi(t, "-rate-limit", "100", "-slow-after", "0", "-login-limit", "3", "-login-window", "1m")
	for i := range 3 {
		resp := do(t, http.MethodPost, base+"/api/login")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "attempt %d", i+1)
	}
	resp := do(t, http.MethodPost, base+"/api/login")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Contains(t, resp.Header.Values("RateLimit-Policy"), `"login";q=3;w=60`)
	assert.Contains(t, resp.Header.Values("RateLimit-Policy"), `"api";q=100;w=60`, "the service-wide policy applies too")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))

	assert.Equal(t, 200, do(t, http.MethodGet, base+"/api/hello").StatusCode, "other routes are unaffected")
}

// TestChiRoutesInAccessLog: the access log line carries chi's route
// pattern, and the stack's other layers work on chi as on ServeMux.
func TestChiRoutesInAccessLog(t *testing.T) {
	base, stdout, stop := startChi(t, "-debug-panic", "-log-format", "json")
	assert.Equal(t, 200, do(t, http.MethodGet, base+"/api/users/42").StatusCode)
	assert.Equal(t, 200, do(t, http.MethodGet, base+"/api/users/7").StatusCode)
	assert.Equal(t, 500, do(t, http.MethodGet, base+"/debug/panic").StatusCode)
	assert.Equal(t, 200, do(t, http.MethodGet, base+"/static/style.css").StatusCode)
	assert.Equal(t, 200, do(t, http.MethodGet, base+"/").StatusCode)
	assert.Equal(t, 200, do(t, http.MethodGet, base+"/api/hello").StatusCode, "still serving after the panic")
	stop()

	routes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "line %q", line)
		if rec["msg"] == "http request" {
			route, _ := rec["http.route"].(string)
			routes[route]++
			if rec["url.path"] == "/debug/panic" {
				assert.EqualValues(t, 500, rec["http.response.status_code"])
				assert.NotEmpty(t, rec["panic"], "recoverer added the panic to the line")
			}
		}
	}
	assert.Equal(t, 2, routes["/api/users/{id}"], "chi's pattern, not the path: %v", routes)
	assert.Equal(t, 1, routes["/api/hello"], "routes in a sub-router keep their full pattern: %v", routes)
	assert.Equal(t, 1, routes["/static/*"], "%v", routes)
}

// TestPerUserLimit: behind the per-IP limit, /api/me is limited per
// authenticated user. Two users from one address (a NAT) each get their own
// quota, and an unauthenticated request never reaches the user limiter.
func TestPerUserLimit(t *testing.T) {
	base, _, _ := startChi(t, "-rate-limit", "100", "-slow-after", "0", "-user-limit", "2")
	me := func(token string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+"/api/me", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 2 {
		require.Equal(t, http.StatusOK, me("demo-alice").StatusCode, "alice, request %d", i+1)
	}
	resp := me("demo-alice")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "alice over her limit")
	assert.Contains(t, resp.Header.Values("RateLimit-Policy"), `"user";q=2;w=60`)
	assert.Contains(t, resp.Header.Values("RateLimit-Policy"), `"api";q=100;w=60`, "the per-IP policy applies too")
	assert.Equal(t, http.StatusOK, me("demo-bob").StatusCode, "bob, from the same address, has his own quota")
	resp = me("")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token")
	assert.NotContains(t, resp.Header.Values("RateLimit-Policy"), `"user";q=2;w=60`, "refused before the user limiter")
}

// TestStaticFilesAreNotLimited: a page load fetches many assets at once;
// only the API is rate-limited.
func TestStaticFilesAreNotLimited(t *testing.T) {
	base, _, _ := startChi(t, "-rate-limit", "2", "-slow-after", "0")
	for i := range 10 {
		resp := do(t, http.MethodGet, base+"/static/style.css")
		require.Equal(t, http.StatusOK, resp.StatusCode, "asset %d", i+1)
		assert.Empty(t, resp.Header.Get("RateLimit"), "no rate-limit headers on static files")
	}
	assert.Equal(t, http.StatusOK, do(t, http.MethodGet, base+"/api/hello").StatusCode)
	assert.Equal(t, http.StatusOK, do(t, http.MethodGet, base+"/api/hello").StatusCode)
	assert.Equal(t, http.StatusTooManyRequests, do(t, http.MethodGet, base+"/api/hello").StatusCode)
}

func TestExitCodes(t *testing.T) {
	none := func(string) string { return "" }
	assert.Equal(t, 0, run(context.Background(), []string{"-h"}, none, io.Discard, nil))
	assert.Equal(t, 2, run(context.Background(), []string{"-login-window", "x"}, none, io.Discard, nil))
	assert.Equal(t, 1, run(context.Background(), []string{"-login-limit", "0", "-log-dir", ""}, none, io.Discard, nil))
}

// TestDebugRoutes: the chi example serves the debug routes of the shared
// flags as examples/server does, and only with their flags.
func TestDebugRoutes(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		paths map[string]int
	}{
		{"off by default", nil, map[string]int{"/debug/hang": http.StatusNotFound, "/debug/alloc?mib=1": http.StatusNotFound, "/healthz": http.StatusOK}},
		{"with their flags", []string{"-debug-hang", "-debug-alloc"}, map[string]int{"/debug/alloc?mib=1": http.StatusOK, "/debug/hang": http.StatusOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, _, _ := startChi(t, tt.args...)
			for path, want := range tt.paths {
				resp := do(t, http.MethodGet, base+path)
				resp.Body.Close()
				assert.Equal(t, want, resp.StatusCode, "GET %s", path)
			}
		})
	}
	base, _, _ := startChi(t, "-debug-hang")
	resp := do(t, http.MethodGet, base+"/debug/hang")
	resp.Body.Close()
	c := &http.Client{Timeout: 300 * time.Millisecond}
	_, err := c.Get(base + "/healthz")
	assert.Error(t, err, "/healthz answered after /debug/hang")
}
