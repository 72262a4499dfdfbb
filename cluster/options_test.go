package cluster

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestOptions is the options' bad-input table: every invalid value, and a
// nil Option, is an error that names the option.
func TestOptions(t *testing.T) {
	wrap := func(ln net.Listener) (net.Listener, error) { return ln, nil }
	tests := []struct {
		name    string
		opts    []Option
		wantErr string // substring; empty: valid
	}{
		{"defaults", nil, ""},
		{"all set", []Option{WithWorkers(3), WithAddr("unix", "/tmp/x.sock"), WithRestartBackoff(time.Millisecond, time.Second),
			WithCrashLoop(3, time.Second), WithShutdownTimeout(time.Second), WithMemoryLimit(1 << 30),
			WithReadyTimeout(time.Second), WithLogger(slog.Default()), WithListener(wrap), WithCrashHandler(func(Crash) {})}, ""},
		{"one worker", []Option{WithWorkers(1)}, ""},
		{"backoff min = max", []Option{WithRestartBackoff(time.Second, time.Second)}, ""},
		{"memory limit 0: no cap", []Option{WithMemoryLimit(0)}, ""},
		{"zero workers", []Option{WithWorkers(0)}, "cluster: WithWorkers: 0 workers, want >= 1"},
		{"negative workers", []Option{WithWorkers(-2)}, "cluster: WithWorkers: -2 workers, want >= 1"},
		{"udp", []Option{WithAddr("udp", ":53")}, `cluster: WithAddr: network "udp", want tcp, tcp4, tcp6 or unix`},
		{"empty network", []Option{WithAddr("", ":80")}, `cluster: WithAddr: network ""`},
		{"empty address", []Option{WithAddr("tcp", "")}, "cluster: WithAddr: empty address"},
		{"backoff min zero", []Option{WithRestartBackoff(0, time.Second)}, "cluster: WithRestartBackoff: min 0s, max 1s, want 0 < min <= max"},
		{"backoff min negative", []Option{WithRestartBackoff(-time.Second, time.Second)}, "cluster: WithRestartBackoff: min -1s"},
		{"backoff max below min", []Option{WithRestartBackoff(time.Second, time.Millisecond)}, "cluster: WithRestartBackoff: min 1s, max 1ms"},
		{"crash loop restarts", []Option{WithCrashLoop(0, time.Minute)}, "cluster: WithCrashLoop: 0 restarts within 1m0s, want restarts >= 1 and within > 0"},
		{"crash loop window", []Option{WithCrashLoop(3, 0)}, "cluster: WithCrashLoop: 3 restarts within 0s"},
		{"shutdown timeout zero", []Option{WithShutdownTimeout(0)}, "cluster: WithShutdownTimeout: 0s, want > 0"},
		{"shutdown timeout negative", []Option{WithShutdownTimeout(-time.Second)}, "cluster: WithShutdownTimeout: -1s, want > 0"},
		{"ready timeout zero", []Option{WithReadyTimeout(0)}, "cluster: WithReadyTimeout: 0s, want > 0"},
		{"ready timeout negative", []Option{WithReadyTimeout(-time.Second)}, "cluster: WithReadyTimeout: -1s, want > 0"},
		{"memory limit", []Option{WithMemoryLimit(-1)}, "cluster: WithMemoryLimit: -1 bytes, want >= 0"},
		{"nil logger", []Option{WithLogger(nil)}, "cluster: WithLogger: nil logger"},
		{"nil listener wrapper", []Option{WithListener(nil)}, "cluster: WithListener: nil function"},
		{"nil crash handler", []Option{WithCrashHandler(nil)}, "cluster: WithCrashHandler: nil function"},
		{"nil option", []Option{nil}, "cluster: nil Option"},
		{"nil option after good ones", []Option{WithWorkers(2), nil}, "cluster: nil Option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConfig(tt.opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Nil(t, c)
				assert.Contains(t, err.Error(), tt.wantErr, "error")
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, c)
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
	assert.False(t, c.addrSet, "address")
	assert.Nil(t, c.wrapListener, "listener wrapper")

	// The logger is slog.Default() at the time of each record, set after
	// the options were read.
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	c.log().Info("cluster: worker ready", "worker", 1)
	assert.Contains(t, logs.String(), `"msg":"cluster: worker ready","cluster":{"worker":1}`, "record through the default set later")
}

// TestLogGroup: the package's attributes are in the "cluster" group, so
// that a logger's own attributes of the same name keep their values.
func TestLogGroup(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil)).With("pid", "app-7", "worker", "billing")
	c, err := newConfig([]Option{WithLogger(logger)})
	require.NoError(t, err)
	c.log().Info("cluster: worker ready", "worker", 0, "pid", 4242)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &rec), "record %s", logs.String())
	assert.Equal(t, "app-7", rec["pid"], "the logger's own pid")
	assert.Equal(t, "billing", rec["worker"], "the logger's own worker")
	assert.Equal(t, map[string]any{"worker": float64(0), "pid": float64(4242)}, rec["cluster"], "the supervisor's attributes")
}

// TestRunServeListenRejectBadArguments is the bad-input table of the
// functions: each returns an error, and starts nothing, for a nil or
// missing argument and an invalid option.
func TestRunServeListenRejectBadArguments(t *testing.T) {
	ctx := context.Background()
	var nilCtx context.Context
	serve := func(context.Context, net.Listener) error { return nil }
	listen := func(ctx context.Context, network string) error {
		ln, err := Listen(ctx, network, "127.0.0.1:0")
		if err == nil {
			ln.Close()
		}
		return err
	}
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"Run nil context", func() error { return Run(nilCtx, serve, WithAddr("tcp", "127.0.0.1:0")) }, "cluster: Run: nil context"},
		{"Run nil serve", func() error { return Run(ctx, nil, WithAddr("tcp", "127.0.0.1:0")) }, "cluster: Run: nil serve function"},
		{"Run without address", func() error { return Run(ctx, serve) }, "cluster: Run: no address; use WithAddr"},
		{"Run bad option", func() error { return Run(ctx, serve, WithAddr("tcp", "127.0.0.1:0"), WithWorkers(-1)) }, "cluster: WithWorkers"},
		{"Run nil option", func() error { return Run(ctx, serve, WithAddr("tcp", "127.0.0.1:0"), nil) }, "cluster: nil Option"},
		{"Serve nil context", func() error { return Serve(nilCtx, &http.Server{}) }, "cluster: Serve: nil context"},
		{"Serve nil server", func() error { return Serve(ctx, nil) }, "cluster: Serve: nil *http.Server"},
		{"Serve bad option", func() error { return Serve(ctx, &http.Server{}, WithShutdownTimeout(0)) }, "cluster: WithShutdownTimeout"},
		{"Serve nil option", func() error { return Serve(ctx, &http.Server{}, nil) }, "cluster: nil Option"},
		{"Serve nil logger", func() error { return Serve(ctx, &http.Server{}, WithLogger(nil)) }, "cluster: WithLogger: nil logger"},
		{"Listen nil context", func() error { return listen(nilCtx, "tcp") }, "cluster: Listen: nil context"},
		{"Listen udp", func() error { return listen(ctx, "udp") }, `cluster: Listen: network "udp", want tcp, tcp4 or tcp6`},
		{"Listen unix", func() error { return listen(ctx, "unix") }, `cluster: Listen: network "unix"`},
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
