package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Each configuration answers GET /hello with the same body; the two
// stacks log the request to their file and the limiters run (they send
// their headers).
func TestConfigurations(t *testing.T) {
	defer goleak.VerifyNone(t)
	cases := []struct {
		name    string
		logFile string // "" when the configuration logs nothing
		header  string // a response header the stack's limiter sets
	}{
		{name: cfgBare},
		{name: cfgShipshape, logFile: "shipshape-access.log", header: "Ratelimit"},
		{name: cfgChi, logFile: "chi-access.log", header: "X-Ratelimit-Limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			h, closers, err := handlerFor(c.name, dir)
			require.NoError(t, err)
			srv := httptest.NewServer(newServer(h).Handler)
			resp, err := srv.Client().Get(srv.URL + "/hello")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			srv.Close()
			for _, cl := range closers {
				require.NoError(t, cl())
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, helloBody, string(body))
			if c.header != "" {
				assert.NotEmpty(t, resp.Header.Get(c.header), "header %s: got %v", c.header, resp.Header)
			}
			if c.logFile != "" {
				b, err := os.ReadFile(filepath.Join(dir, c.logFile))
				require.NoError(t, err)
				assert.Equal(t, 1, strings.Count(string(b), "/hello"), "access log: got %q, want one line for /hello", b)
			}
		})
	}
}

func TestUnknownConfiguration(t *testing.T) {
	_, _, err := handlerFor("nginx", t.TempDir())
	assert.Error(t, err)
}

// benchHandler measures a handler that answers 200 and refuses to give
// figures for one that does not (each case runs testing.Benchmark: ~1s).
func TestBenchHandler(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		parallel bool
		wantErr  string
	}{
		{name: "200 on one goroutine", status: http.StatusOK},
		{name: "503 on every core", status: http.StatusServiceUnavailable, parallel: true, wantErr: "answered 503"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(c.status) })
			f, err := benchHandler(h, 1, c.parallel)
			if c.wantErr != "" {
				assert.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Positive(t, f.ns, "ns/op")
			assert.Zero(t, f.allocs, "allocs/op: the benchmark's writer and request must add none")
		})
	}
}
