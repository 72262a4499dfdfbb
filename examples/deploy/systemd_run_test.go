//go:build linux

package deploy

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/loadgen"
	"github.com/shipshape-go/shipshape/internal/testenv"
)

// systemdHost is a container with systemd as PID 1 and shipshape.service
// installed as its comments say: the production build at
// /usr/local/bin/shipshape, the unit in /etc/systemd/system, the optional
// /etc/shipshape/env. The unit file is mounted as it is shipped.
type systemdHost struct {
	p  *testenv.Podman
	id string
}

func (h *systemdHost) exec(t *testing.T, args ...string) string {
	t.Helper()
	return h.p.Run(t, append([]string{"exec", h.id}, args...)...)
}

// show is `systemctl show shipshape` for the properties named.
func (h *systemdHost) show(t *testing.T, props ...string) map[string]string {
	t.Helper()
	args := []string{"systemctl", "show", "shipshape"}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	m := map[string]string{}
	for _, line := range strings.Split(h.exec(t, args...), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (h *systemdHost) journal(t *testing.T) string {
	t.Helper()
	return h.exec(t, "journalctl", "--no-pager", "-o", "cat", "-u", "shipshape")
}

// TestSystemdUnitRuns runs shipshape.service under a real systemd (in a
// privileged podman container, the test machines' host has none) and
// checks what the unit promises: it starts with its system-call filter and
// hardening in force and serves a load, comes back after kill -9, is held
// to MemoryMax (an OOM kill, then a restart), drains on systemctl stop and
// flushes its access log, and logs to the journal.
func TestSystemdUnitRuns(t *testing.T) {
	t.Parallel()
	p := testenv.LookPodman(t)
	image := systemdImage(t, p)
	bin := productionBinary(t)
	unit, err := filepath.Abs("shipshape.service")
	require.NoError(t, err)
	// The unit's optional EnvironmentFile, for the debug route of the
	// memory check.
	env := filepath.Join(t.TempDir(), "env")
	require.NoError(t, os.WriteFile(env, []byte("DEBUG_ALLOC=true\n"), 0o600))

	// --cgroupns=private: with cgroup v1 (the test machines), systemd in
	// the container can make the unit's memory cgroup, so MemoryMax is
	// applied; in the host's cgroup namespace it cannot, and the limit is
	// silently not there. --network=none: the unit listens on loopback;
	// the test dials into the container's network namespace.
	h := &systemdHost{p: p}
	h.id = p.Start(t, "--privileged", "--systemd=always", "--cgroupns=private", "--network=none",
		"-v", bin+":/usr/local/bin/shipshape:ro",
		"-v", unit+":/etc/systemd/system/shipshape.service:ro",
		"-v", env+":/etc/shipshape/env:ro",
		image)
	// The first tries come before systemd's bus is up.
	var state string
	_, err = testenv.WaitFor("systemd booted", 60*time.Second, 100*time.Millisecond, func() bool {
		state, _ = p.Try("exec", h.id, "systemctl", "is-system-running", "--wait")
		return state == "running" || state == "degraded"
	})
	require.NoError(t, err, "systemd in the container: %q\n%s", state, p.Logs(h.id, 50))
	if state == "degraded" {
		t.Logf("failed units (not shipshape's): %s", h.exec(t, "systemctl", "--failed", "--no-legend"))
	}
	h.exec(t, "systemctl", "start", "shipshape")

	tr := &http.Transport{DialContext: testenv.DialInNetns(pidOf(t, p, h.id))}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	const base = "http://127.0.0.1:8080" // the unit's ADDR
	serving := func() bool {
		resp, err := c.Get(base + "/healthz")
		if err != nil {
			return false
		}
		drain(resp)
		return resp.StatusCode == http.StatusOK
	}
	_, err = testenv.WaitFor("shipshape.service serving", 15*time.Second, 50*time.Millisecond, serving)
	require.NoError(t, err, "journal:\n%s", h.journal(t))

	t.Run("hardened, filtered, and serving the load", func(t *testing.T) {
		pid := h.show(t, "MainPID")["MainPID"]
		status := h.exec(t, "cat", "/proc/"+pid+"/status")
		for field, want := range map[string]string{"Seccomp": "2", "NoNewPrivs": "1", "CapEff": "0000000000000000"} {
			assert.Contains(t, status, field+":\t"+want+"\n", "%s of the service", field)
		}
		assert.NotContains(t, status, "Uid:\t0\t", "the service runs as its dynamic user, not root")

		for _, r := range []struct{ method, path, body string }{
			{"GET", "/", ""},
			{"GET", "/api/hello", ""},
			{"GET", "/static/" + fingerprinted, ""},
			{"GET", "/api/stream", ""},
			{"POST", "/api/echo", `{"a":1}`},
			{"GET", "/nope", ""},
		} {
			req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
			require.NoError(t, err)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := c.Do(req)
			require.NoError(t, err, "%s %s", r.method, r.path)
			drain(resp)
			assert.Less(t, resp.StatusCode, 500, "%s %s", r.method, r.path)
		}
		res, err := loadgen.Run(t.Context(), loadgen.Config{URL: base + "/", Concurrency: 8, Duration: 2 * time.Second, Transport: tr})
		require.NoError(t, err)
		t.Logf("load under systemd: %s", res)
		assert.Zero(t, res.Failed(), "failed requests under load: %s", res)
		assert.Positive(t, res.Requests, "requests served")

		s := h.show(t, "ActiveState", "NRestarts", "ExecMainStatus")
		assert.Equal(t, map[string]string{"ActiveState": "active", "NRestarts": "0", "ExecMainStatus": "0"}, s, "the unit after the load")
		journal := h.journal(t)
		for _, bad := range []string{"status=31/SYS", "SIGSYS", "226/NAMESPACE", "Failed to set up"} {
			assert.False(t, strings.Contains(journal, bad), "%s in the journal:\n%s", bad, lastLines(journal, 20))
		}
	})

	t.Run("kill -9: restarted after RestartSec", func(t *testing.T) {
		pid := h.show(t, "MainPID")["MainPID"]
		probe := startProbe(c, base+"/healthz", 25*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		killed := time.Now()
		h.exec(t, "systemctl", "kill", "--kill-who=main", "--signal=SIGKILL", "shipshape")
		_, err := testenv.WaitFor("restart", 20*time.Second, 50*time.Millisecond, func() bool {
			return h.show(t, "NRestarts")["NRestarts"] == "1" && probe.okSince(time.Now().Add(-100*time.Millisecond))
		})
		res := probe.stop()
		require.NoError(t, err, "journal:\n%s", lastLines(h.journal(t), 20))
		_, last, failed := res.failures()
		back := res.okAfter(last)
		t.Logf("kill -9 to serving again under systemd: %v (RestartSec=2s); %d requests failed", back.Sub(killed).Round(time.Millisecond), failed)
		assert.Equal(t, "1", h.show(t, "NRestarts")["NRestarts"], "NRestarts")
		assert.NotEqual(t, pid, h.show(t, "MainPID")["MainPID"], "a new process")
		assert.Less(t, back.Sub(killed), 10*time.Second, "time to restart")
	})

	t.Run("MemoryMax: OOM kill, then a restart", func(t *testing.T) {
		u := parseUnit(t, readFile(t, "shipshape.service"))
		limit := bytesOf(t, u.get("Service", "MemoryMax"))
		got := h.exec(t, "cat", "/sys/fs/cgroup/memory/system.slice/shipshape.service/memory.limit_in_bytes")
		require.Equal(t, strconv.FormatInt(limit, 10), got, "the unit's memory cgroup limit is MemoryMax")
		start := time.Now()
		allocated := 0
		for allocated < int(2*limit>>20) {
			resp, err := c.Get(base + "/debug/alloc?mib=64")
			if err != nil {
				break // the process died under the request
			}
			drain(resp)
			if resp.StatusCode != http.StatusOK {
				break
			}
			allocated += 64
		}
		t.Logf("allocated %d MiB in answered requests before the kill (MemoryMax %d MiB, GOMEMLIMIT %s)", allocated, limit>>20, u.env()["GOMEMLIMIT"])
		assert.Less(t, allocated, int(limit>>20), "the limit stopped the allocations")
		_, err := testenv.WaitFor("restart after the OOM kill", 20*time.Second, 50*time.Millisecond, func() bool {
			return h.show(t, "NRestarts")["NRestarts"] == "2" && serving()
		})
		require.NoError(t, err, "journal:\n%s", lastLines(h.journal(t), 20))
		assert.Equal(t, "2", h.show(t, "NRestarts")["NRestarts"], "NRestarts")
		assert.Contains(t, kernelLog(t, start), "Memory cgroup out of memory", "the kernel's OOM killer acted on the unit's cgroup")
		// On cgroup v2 systemd reports Result=oom-kill; on v1 it sees a
		// SIGKILL.
		assert.True(t, strings.Contains(h.journal(t), "status=9/KILL"), "the journal records the kill:\n%s", lastLines(h.journal(t), 20))
	})

	t.Run("systemctl stop drains and flushes the logs", func(t *testing.T) {
		events, started := make(chan int, 1), make(chan struct{})
		go func() {
			n := 0
			defer func() { events <- n }()
			resp, err := c.Get(base + "/api/stream")
			if err != nil {
				close(started)
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					if n++; n == 1 {
						close(started)
					}
				}
			}
		}()
		// Stop the unit under the stream, once it has begun (five events,
		// 200ms apart).
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		out, err := p.Command(ctx, "exec", h.id, "systemctl", "stop", "shipshape").CombinedOutput()
		require.NoError(t, err, "systemctl stop: %s", out)
		assert.Equal(t, 5, <-events, "events of the stream that was under way at the stop")
		s := h.show(t, "ActiveState", "Result", "ExecMainStatus")
		assert.Equal(t, map[string]string{"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}, s, "the unit after systemctl stop")
		access := h.exec(t, "cat", "/var/log/shipshape/access.log")
		assert.Contains(t, access, `"GET /api/stream HTTP/1.1" 200 `, "the stream's line, flushed at the stop, in the LogsDirectory")
		journal := h.journal(t)
		for what, want := range map[string]string{
			"application records":                  `"msg":"listening","addr":"127.0.0.1:8080"`,
			"the graceful stop":                    `"msg":"shutting down"`,
			"access records too (LOG_FORMAT=json)": `"url.path":"/api/stream"`,
		} {
			assert.True(t, strings.Contains(journal, want), "%s in the journal: no %s in its last lines:\n%s", what, want, lastLines(journal, 20))
		}
	})
}

// lastLines is the last n lines of s, for messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
