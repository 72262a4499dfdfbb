package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// TestClusterSharesLimitThroughRedis builds the example, runs it with two
// workers on one Redis, and checks that requests spread over both workers
// while the rate limit holds for the cluster as a whole; SIGTERM stops it
// cleanly with both access logs flushed.
func TestClusterSharesLimitThroughRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	rds := testenv.StartRedis(t)
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	exe := filepath.Join(t.TempDir(), "cluster")
	build := exec.Command(goBin, "build", "-o", exe, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	logDir := t.TempDir()
	port := testenv.FreePort(t)
	cmd := exec.Command(exe, "-workers", "2", "-addr", testenv.Addr(port), "-log-dir", logDir,
		"-log-format", "none", "-rate-limit", "20", "-slow-after", "0")
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+rds.Addr+"/0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	var logMu sync.Mutex
	var logs strings.Builder
	ready := make(chan struct{}, 2)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "worker ready") {
				ready <- struct{}{}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			logMu.Lock()
			t.Logf("supervisor output:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	for range 2 {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatal("workers not ready")
		}
	}

	// 60 requests on new connections: exactly 20 admitted across both
	// workers, the rest 429.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	codes := map[int]int{}
	for range 60 {
		resp, err := client.Get("http://" + testenv.Addr(port) + "/api/hello")
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	assert.Equal(t, map[int]int{200: 20, 429: 40}, codes, "the limit holds for the cluster, not per worker")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor did not exit after SIGTERM")
	}

	// Each worker wrote its own access log; together they hold every request.
	files, err := filepath.Glob(filepath.Join(logDir, "access-*.log"))
	require.NoError(t, err)
	require.Len(t, files, 2, "one access log per worker")
	line := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /api/hello HTTP/1\.1" (200|429) \d+ "-" "Go-http-client/1\.1"$`)
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		assert.NotEmpty(t, strings.TrimSpace(string(data)), "%s: both workers served requests", f)
		for _, l := range lines {
			if l != "" {
				assert.Regexp(t, line, l)
				total++
			}
		}
	}
	assert.Equal(t, 60, total, "every request logged once")
}

func TestExitCodes(t *testing.T) {
	none := func(string) string { return "" }
	assert.Equal(t, 0, run([]string{"-h"}, none))
	assert.Equal(t, 2, run([]string{"-workers", "x"}, none))
	assert.Equal(t, 1, run([]string{"-healthcheck", "http://127.0.0.1:1/"}, none))
}
