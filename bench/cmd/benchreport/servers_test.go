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

// wantJSON is the /json document, as bench/node/server.js answers it too.
const wantJSON = `{"product":{"id":42,"sku":"sku-0042","name":"Product 42","price":15.54,"tags":["t0","t9"]},` +
	`"related":[{"id":43,"sku":"sku-0043","name":"Product 43","price":15.91,"tags":["t1","t10"]},` +
	`{"id":44,"sku":"sku-0044","name":"Product 44","price":16.28,"tags":["t2","t0"]},` +
	`{"id":45,"sku":"sku-0045","name":"Product 45","price":16.65,"tags":["t3","t1"]},` +
	`{"id":46,"sku":"sku-0046","name":"Product 46","price":17.02,"tags":["t4","t2"]},` +
	`{"id":47,"sku":"sku-0047","name":"Product 47","price":17.39,"tags":["t5","t3"]},` +
	`{"id":48,"sku":"sku-0048","name":"Product 48","price":17.76,"tags":["t6","t4"]},` +
	`{"id":49,"sku":"sku-0049","name":"Product 49","price":18.13,"tags":["t0","t5"]},` +
	`{"id":50,"sku":"sku-0050","name":"Product 50","price":18.5,"tags":["t1","t6"]}],` +
	`"score":3404420316}`

// Every Go configuration answers GET /json with the document, and the
// servers pass the check the report makes before measuring one.
func TestConfigurationsJSON(t *testing.T) {
	defer goleak.VerifyNone(t)
	require.Equal(t, wantJSON, jsonBody(), "the document")
	for _, name := range configs {
		t.Run(name, func(t *testing.T) {
			h, closers, err := handlerFor(name, t.TempDir())
			require.NoError(t, err)
			srv := httptest.NewServer(newServer(h).Handler)
			resp, err := srv.Client().Get(srv.URL + "/json")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkErr := checkServer(srv.URL)
			srv.CloseClientConnections()
			srv.Close()
			for _, cl := range closers {
				require.NoError(t, cl())
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
			assert.JSONEq(t, wantJSON, string(body))
			assert.Equal(t, wantJSON, string(body), "the same bytes as the Node peer's")
			assert.NoError(t, checkErr, "checkServer")
		})
	}
}

// checkServer refuses a server whose answers differ from the Go handlers'.
func TestCheckServerRefuses(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"another /json document", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hello" {
				hello(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = io.WriteString(w, `{"score":1}`)
		}, "/json: 200"},
		{"another Content-Type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, helloBody)
		}, "/hello: 200 text/html"},
		{"not found", http.NotFound, "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			err := checkServer(srv.URL)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

// jsonScore in uint32 arithmetic: the figures bench/node/server.js
// reproduces with Math.imul and >>>.
func TestJSONScore(t *testing.T) {
	assert.Equal(t, uint32(0), jsonScore(42, 0), "no rounds")
	assert.Equal(t, jsonScore(43, 5), jsonScore(42, 5), "the seed's low bit is set")
	assert.Equal(t, uint32(3404420316), jsonScore(42, jsonRounds))
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

// BenchmarkJSONHandler is the in-process cost of the /json handler alone,
// on one goroutine (ns/op is CPU time): jsonRounds is tuned on it.
func BenchmarkJSONHandler(b *testing.B) {
	b.ReportAllocs()
	w, req := benchRequest()
	for b.Loop() {
		w.serve(http.HandlerFunc(jsonHandler), req)
	}
}
