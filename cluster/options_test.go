package cluster

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr string // substring; empty: valid
	}{
		{"defaults", nil, ""},
		{"all set", []Option{WithWorkers(3), WithAddr("unix", "/tmp/x.sock"), WithRestartBackoff(time.Millisecond, time.Second),
			WithCrashLoop(3, time.Second), WithShutdownTimeout(time.Second), WithMemoryLimit(1 << 30),
			WithReadyTimeout(time.Second), WithLogger(slog.Default())}, ""},
		{"zero workers", []Option{WithWorkers(0)}, "cluster: WithWorkers: 0 workers"},
		{"udp", []Option{WithAddr("udp", ":53")}, `network "udp"`},
		{"empty address", []Option{WithAddr("tcp", "")}, "empty address"},
		{"backoff min zero", []Option{WithRestartBackoff(0, time.Second)}, "WithRestartBackoff"},
		{"backoff max below min", []Option{WithRestartBackoff(time.Second, time.Millisecond)}, "WithRestartBackoff"},
		{"crash loop restarts", []Option{WithCrashLoop(0, time.Minute)}, "WithCrashLoop"},
		{"crash loop window", []Option{WithCrashLoop(3, 0)}, "WithCrashLoop"},
		{"shutdown timeout", []Option{WithShutdownTimeout(0)}, "WithShutdownTimeout"},
		{"ready timeout", []Option{WithReadyTimeout(-time.Second)}, "WithReadyTimeout"},
		{"memory limit", []Option{WithMemoryLimit(-1)}, "WithMemoryLimit"},
		{"nil logger", []Option{WithLogger(nil)}, "WithLogger: nil logger"},
		{"nil listener wrapper", []Option{WithListener(nil)}, "WithListener: nil function"},
		{"nil option", []Option{nil}, "nil Option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConfig(tt.opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr, "error")
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, c.logger, "logger")
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := newConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, runtime.GOMAXPROCS(0), c.workers, "workers")
	assert.Equal(t, 100*time.Millisecond, c.backoffMin, "backoff min")
	assert.Equal(t, 15*time.Second, c.backoffMax, "backoff max")
	assert.Equal(t, 10, c.crashRestarts, "crash loop restarts")
	assert.Equal(t, time.Minute, c.crashWithin, "crash loop window")
	assert.Equal(t, 20*time.Second, c.shutdownTimeout, "shutdown timeout")
	assert.Equal(t, 20*time.Second, c.readyTimeout, "ready timeout")
	assert.Zero(t, c.memoryLimit, "memory limit")
	assert.Same(t, slog.Default(), c.logger, "logger")
}

func TestRunServeRejectBadArguments(t *testing.T) {
	ctx := context.Background()
	serve := func(context.Context, net.Listener) error { return nil }
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"Run nil serve", func() error { return Run(ctx, nil, WithAddr("tcp", ":0")) }, "nil serve"},
		{"Run without address", func() error { return Run(ctx, serve) }, "use WithAddr"},
		{"Run bad option", func() error { return Run(ctx, serve, WithWorkers(-1)) }, "WithWorkers"},
		{"Serve nil server", func() error { return Serve(ctx, nil) }, "nil *http.Server"},
		{"Serve bad option", func() error { return Serve(ctx, &http.Server{}, WithShutdownTimeout(0)) }, "WithShutdownTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr, "error")
		})
	}
}

func TestWorkerID(t *testing.T) {
	tests := []struct {
		name   string
		value  *string
		wantID int
		wantOK bool
	}{
		{"unset", nil, 0, false},
		{"zero", ptr("0"), 0, true},
		{"three", ptr("3"), 3, true},
		{"negative", ptr("-1"), 0, false},
		{"not a number", ptr("x"), 0, false},
		{"empty", ptr(""), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvWorkerID, "placeholder") // restored after the test
			if tt.value == nil {
				require.NoError(t, os.Unsetenv(EnvWorkerID))
			} else {
				t.Setenv(EnvWorkerID, *tt.value)
			}
			id, ok := WorkerID()
			assert.Equal(t, tt.wantID, id, "id")
			assert.Equal(t, tt.wantOK, ok, "ok")
		})
	}
}

func ptr(s string) *string { return &s }
