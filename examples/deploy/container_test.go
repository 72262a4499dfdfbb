//go:build linux

package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// health is what podman inspect says of a container's health check.
type health struct {
	Status        string
	FailingStreak int
	Log           []struct {
		ExitCode int
		Output   string
	}
}

func inspectHealth(t *testing.T, p *testenv.Podman, id string) health {
	t.Helper()
	var h health
	require.NoError(t, json.Unmarshal([]byte(p.Inspect(t, id, "{{json .State.Health}}")), &h))
	return h
}

// runHealthCheck runs the container's health check once, as the engine's
// scheduler would at each interval. podman schedules health checks with
// systemd timers, and the test machines run no systemd: the tests run
// each check themselves. The command, its timeout and the retries are
// the image's (or compose's); only the interval is the test's.
func runHealthCheck(p *testenv.Podman, id string) error {
	_, err := p.Try("healthcheck", "run", id)
	return err
}

// pidOf is the host pid of the container's main process.
func pidOf(t *testing.T, p *testenv.Podman, id string) int {
	t.Helper()
	pid, err := strconv.Atoi(p.Inspect(t, id, "{{.State.Pid}}"))
	require.NoError(t, err)
	require.Positive(t, pid, "container %.12s is not running", id)
	return pid
}

// procStatus is a field of /proc/pid/status.
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// TestDockerImage builds the Dockerfile for real and runs the image: it
// runs as nonroot, its HEALTHCHECK (the binary checking itself, no shell)
// reports healthy, then unhealthy once /healthz stops answering.
func TestDockerImage(t *testing.T) {
	t.Parallel()
	p := testenv.LookPodman(t)
	image := appImage(t, p)

	size, err := strconv.ParseInt(p.Inspect(t, image, "{{.Size}}"), 10, 64)
	require.NoError(t, err)
	t.Logf("image %s: %.1f MB (%d bytes) on the local distroless stand-in; built in %v", image, float64(size)/1e6, size, appImageBuild.took.Round(time.Second))
	assert.Less(t, size, int64(40<<20), "image size: a static binary on distroless")
	assert.Equal(t, "nonroot:nonroot", p.Inspect(t, image, "{{.Config.User}}"), "USER of the image")
	var hc struct{ Test []string }
	require.NoError(t, json.Unmarshal([]byte(p.Inspect(t, image, "{{json .HealthCheck}}")), &hc), "HEALTHCHECK kept in the image (podman build --format docker)")
	assert.Equal(t, []string{"CMD", "/shipshape", "-healthcheck", "http://127.0.0.1:8080/healthz"}, hc.Test, "HEALTHCHECK in exec form")

	t.Run("the log directory: nonroot's, and 1777 for a tmpfs over it", func(t *testing.T) {
		root := p.Run(t, "image", "mount", image)
		t.Cleanup(func() { _, _ = p.Try("image", "unmount", image) })
		st, err := os.Stat(filepath.Join(root, "var/log/shipshape"))
		require.NoError(t, err)
		assert.Equal(t, os.ModeDir|os.ModeSticky|0o777, st.Mode(), "mode of /var/log/shipshape")
		assert.Equal(t, uint32(65532), st.Sys().(*syscall.Stat_t).Uid, "owner of /var/log/shipshape")
		_, err = os.Stat(filepath.Join(root, "bin/sh"))
		assert.ErrorIs(t, err, os.ErrNotExist, "no shell in the image")
	})

	id := p.Start(t, "-p", "127.0.0.1::8080", "-e", "DEBUG_HANG=true", image)
	pid := pidOf(t, p, id)
	assert.Equal(t, "65532\t65532\t65532\t65532", procStatus(t, pid, "Uid"), "uids of the server in the container")
	assert.Equal(t, "0000000000000000", procStatus(t, pid, "CapEff"), "effective capabilities of the server")
	hostPort := p.Run(t, "port", id, "8080/tcp")
	base := "http://" + strings.Replace(hostPort, "0.0.0.0", "127.0.0.1", 1)
	require.NoError(t, testenv.WaitTCP(strings.TrimPrefix(base, "http://"), 10*time.Second))

	t.Run("healthy", func(t *testing.T) {
		_, err := testenv.WaitFor("health check passes", 20*time.Second, 200*time.Millisecond, func() bool {
			return runHealthCheck(p, id) == nil
		})
		require.NoError(t, err)
		assert.Equal(t, "healthy", inspectHealth(t, p, id).Status, "health status")
	})

	t.Run("unhealthy once /healthz hangs", func(t *testing.T) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(base + "/debug/hang")
		require.NoError(t, err)
		drain(resp)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		// Failures within the start period (10s from the start) do not
		// count; after it, the third failure in a row is unhealthy.
		var h health
		checks := 0
		for checks < 10 && h.Status != "unhealthy" {
			checks++
			start := time.Now()
			assert.Error(t, runHealthCheck(p, id), "health check %d after the hang", checks)
			assert.Less(t, time.Since(start), 10*time.Second, "a hung check ends by its timeout")
			h = inspectHealth(t, p, id)
			if h.Status != "unhealthy" {
				assert.Less(t, h.FailingStreak, 3, "healthy with a failing streak of %d (retries=3)", h.FailingStreak)
			}
		}
		t.Logf("unhealthy after %d failed checks (%d counted)", checks, h.FailingStreak)
		assert.Equal(t, "unhealthy", h.Status, "health status after the retries")
		assert.GreaterOrEqual(t, h.FailingStreak, 3, "failing streak")
		if assert.NotEmpty(t, h.Log) {
			assert.Contains(t, h.Log[len(h.Log)-1].Output, "Client.Timeout", "the check gave up waiting, it was not refused")
		}
		resp, err = c.Get(base + "/api/hello")
		require.NoError(t, err)
		drain(resp)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the rest of the service answers: only the health check hangs")
	})

	t.Run("SIGTERM stops it cleanly", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := p.Command(ctx, "stop", "-t", "15", id).CombinedOutput()
		require.NoError(t, err, "podman stop: %s", out)
		assert.Equal(t, "0", p.Inspect(t, id, "{{.State.ExitCode}}"), "exit status after SIGTERM (STOPSIGNAL)")
	})
}
