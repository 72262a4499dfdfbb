package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startServer serves the example on a loopback port until the test ends.
func startServer(t *testing.T, cfg config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "graceful shutdown")
		case <-time.After(15 * time.Second):
			t.Error("server did not shut down")
		}
	})
	return "http://" + ln.Addr().String()
}

func TestServerRateLimits(t *testing.T) {
	cfg, err := parseConfig([]string{"-rate-limit", "3", "-rate-window", "1m"}, func(string) string { return "" })
	require.NoError(t, err)
	base := startServer(t, cfg)

	for i := range 3 {
		resp, err := http.Get(base + "/api/hello")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "request %d: %s", i+1, body)
		assert.JSONEq(t, `{"hello":"127.0.0.1"}`, string(body))
		assert.NotEmpty(t, resp.Header.Get("RateLimit"))
	}
	resp, err := http.Get(base + "/api/hello")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"RATE_LIMIT": "7", "TRUSTED_PROXIES": " 10.0.0.0/8 , ,::1/128"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.Limit)
	assert.Equal(t, time.Minute, cfg.Window)
	assert.Equal(t, []string{"10.0.0.0/8", "::1/128"}, cfg.TrustedProxies)

	cfg, err = parseConfig([]string{"-rate-limit", "9"}, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, 9, cfg.Limit, "flags override the environment")

	_, err = parseConfig([]string{"-rate-limit", "x"}, func(string) string { return "" })
	assert.Error(t, err)
}

func TestBadConfigIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = serve(context.Background(), ln, config{Limit: 0, Window: time.Minute}, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "limit must be > 0")
}
