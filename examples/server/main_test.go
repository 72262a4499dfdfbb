package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"bad flag", []string{"-rate-limit", "many"}, 2},
		{"bad format", []string{"-log-format", "xml"}, 2},
		{"cannot listen", []string{"-addr", "256.0.0.1:80", "-log-dir", ""}, 1},
		{"health check against nothing", []string{"-healthcheck", "http://127.0.0.1:1/healthz"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, run(tt.args))
		})
	}
}

// TestMain runs the server's main instead of the tests when the test
// binary is re-executed as the program (SERVER_TEST_ARGS set).
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("SERVER_TEST_ARGS"); ok {
		os.Exit(run(strings.Fields(args)))
	}
	os.Exit(m.Run())
}

// TestSIGHUPReopensTheLog: SIGHUP, which systemd's ExecReload and logrotate
// send, does not stop the server (Go's default); the access log is
// reopened at its path, so the lines after a rename go to a new file, and
// SIGTERM still drains and exits 0 with every line written.
func TestSIGHUPReopensTheLog(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	logDir := t.TempDir()
	port := testenv.FreePort(t)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "SERVER_TEST_ARGS=-addr "+testenv.Addr(port)+" -log-dir "+logDir+" -log-format none")
	p := testenv.Start(t, "server", cmd, testenv.Addr(port))
	get := func() {
		resp, err := http.Get("http://" + testenv.Addr(port) + "/api/hello")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}
	logPath := filepath.Join(logDir, "access.log")
	get()
	// Wait until the line is on disk (the writer batches for up to 1s),
	// then move the file away as logrotate does.
	require.Eventually(t, func() bool { b, _ := os.ReadFile(logPath); return len(b) > 0 }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, os.Rename(logPath, logPath+".1"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { _, err := os.Stat(logPath); return err == nil }, 5*time.Second, 20*time.Millisecond,
		"the file is reopened at its path")
	get()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	assert.Equal(t, 0, cmd.ProcessState.ExitCode(), "output: %s", p.Output())
	old, err := os.ReadFile(logPath + ".1")
	require.NoError(t, err)
	cur, err := os.ReadFile(logPath)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(old), "\n"), "the line before the rename")
	assert.Equal(t, 1, strings.Count(string(cur), "\n"), "the line after the reopen")
}
