//go:build linux

package deploy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, "compose.yaml"))))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cf), "compose.yaml")
	return cf
}

// TestComposeTranslationCoversEveryKey: every key compose.yaml may use
// (composeService, decoded strictly) is applied when the stack runs.
func TestComposeTranslationCoversEveryKey(t *testing.T) {
	typ := reflect.TypeOf(composeService{})
	var keys []string
	for i := range typ.NumField() {
		key := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]
		keys = append(keys, key)
		_, ok := composeKeys[key]
		assert.True(t, ok, "compose key %q has no podman translation in composeKeys", key)
	}
	for key := range composeKeys {
		assert.Contains(t, keys, key, "composeKeys translates %q, which composeService does not decode", key)
	}
}

// appService is the compose service of the application.
const appService = "app"

// TestComposeStack brings compose.yaml up on podman (see compose_run_test.go
// for why not podman-compose) with local stand-ins for its public images,
// and checks what the file promises: TLS through nginx to the service with
// Redis behind it and the client's address in the access log, read-only
// roots, a restart after kill -9 with requests failing only in the gap,
// the memory limit enforced by the kernel (OOM kill, then a restart), and
// a full log disk that costs log lines, counted, not requests.
func TestComposeStack(t *testing.T) {
	t.Parallel()
	p := testenv.LookPodman(t)
	cf := loadCompose(t)
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	certDir := certs(t)
	s := &stack{
		p:       p,
		project: fmt.Sprintf("shipshape-test-%d", os.Getpid()),
		dir:     dir,
		file:    cf,
		images: map[string]string{
			"nginx":    nginxImage(t, p),
			"redis":    redisImage(t, p),
			appService: appImage(t, p),
		},
		// Published on loopback, on ports podman picks.
		ports: map[string][]string{"nginx": {"127.0.0.1::80", "127.0.0.1::443"}},
		binds: map[string]string{"./tls": certDir},
		env:   map[string]map[string]string{appService: {"DEBUG_ALLOC": "true"}},
	}
	s.up(t)
	app := s.ids[appService]
	s.waitHealthy(t, appService, 30*time.Second)
	s.waitHealthy(t, "nginx", 30*time.Second)

	httpsAddr := strings.Replace(p.Run(t, "port", s.ids["nginx"], "443/tcp"), "0.0.0.0", "127.0.0.1", 1)
	base := "https://" + httpsAddr
	c := publishedPortClient(t, filepath.Join(certDir, "ca.pem"))
	// The client as the containers see it: the published port's traffic
	// reaches nginx from the network's gateway.
	var nets []struct {
		Subnets []struct{ Gateway string } `json:"subnets"`
	}
	require.NoError(t, json.Unmarshal([]byte(p.Run(t, "network", "inspect", s.network)), &nets))
	require.NotEmpty(t, nets)
	require.NotEmpty(t, nets[0].Subnets)
	client := nets[0].Subnets[0].Gateway

	t.Run("HTTPS through nginx to the service, rate limits in Redis", func(t *testing.T) {
		resp := get(t, c, base+"/api/hello")
		assert.Equal(t, http.StatusOK, resp.StatusCode, "status")
		assert.Equal(t, 2, resp.ProtoMajor, "HTTP/2 from nginx")
		assert.Equal(t, hsts, resp.Header.Get("Strict-Transport-Security"), "HSTS")
		r, ok := remaining(resp)
		assert.True(t, ok, "RateLimit header %q", resp.Header.Get("RateLimit"))
		assert.Equal(t, 99, r, "remaining of the default 100 per minute")
		assert.Equal(t, client, helloIP(t, resp), "client address the service saw: the gateway nginx saw, not nginx")
		keys := p.Run(t, "exec", s.ids["redis"], "redis-cli", "--scan")
		assert.NotEmpty(t, keys, "rate-limit counts in Redis")
		logs := p.Logs(app, 0)
		assert.Contains(t, logs, `"msg":"listening","addr":"127.0.0.1:8080","redis":true`, "the service started with Redis")
	})

	t.Run("the access log has the client address", func(t *testing.T) {
		path := fmt.Sprintf("/proc/%d/root%s/access.log", pidOf(t, p, app), cf.Services[appService].Env["LOG_DIR"])
		var lines []string
		_, err := testenv.WaitFor("access log line", 10*time.Second, 100*time.Millisecond, func() bool {
			b, _ := os.ReadFile(path)
			lines = strings.Split(strings.TrimSpace(string(b)), "\n")
			return len(lines) > 0 && lines[0] != ""
		})
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(lines[0], client+" - - ["), "combined line starts with the client address %s: %q", client, lines[0])
		assert.Contains(t, lines[0], `"GET /api/hello HTTP/1.1" 200 `)
	})

	t.Run("read-only roots, writable mounts", func(t *testing.T) {
		for _, name := range []string{appService, "nginx", "redis"} {
			// Root on the host, writing through the container's own
			// mounts: the kernel refuses it on a read-only mount.
			root := fmt.Sprintf("/proc/%d/root", pidOf(t, p, s.ids[name]))
			err := os.WriteFile(root+"/etc/written-by-test", []byte("x"), 0o644)
			assert.ErrorIs(t, err, syscall.EROFS, "%s: a write to /etc", name)
			for _, m := range cf.Services[name].Tmpfs {
				target, _, _ := strings.Cut(m, ":")
				probe := filepath.Join(root, target, "written-by-test")
				if assert.NoError(t, os.WriteFile(probe, []byte("x"), 0o644), "%s: a write to its tmpfs %s", name, target) {
					os.Remove(probe)
				}
			}
		}
	})

	t.Run("kill -9: restarted, requests fail only in the gap", func(t *testing.T) {
		before := restartCount(t, p, app)
		probe := startProbe(c, base+"/healthz", 25*time.Millisecond)
		time.Sleep(500 * time.Millisecond) // successes before the kill
		killed := time.Now()
		require.NoError(t, syscall.Kill(servicePid(t, p, app), syscall.SIGKILL))
		_, err := testenv.WaitFor("restart", 30*time.Second, 20*time.Millisecond, func() bool {
			return restartCount(t, p, app) > before && probe.okSince(time.Now().Add(-100*time.Millisecond))
		})
		require.NoError(t, err)
		time.Sleep(500 * time.Millisecond) // successes after it
		res := probe.stop()
		first, last, failed := res.failures()
		require.Positive(t, failed, "requests failed while the service was down (nginx answers 502)")
		back := res.okAfter(last)
		t.Logf("kill -9 to serving again: %v; %d of %d requests (one every 25ms) failed, sent from kill +%v to +%v",
			back.Sub(killed).Round(time.Millisecond), failed, len(res), first.Sub(killed).Round(time.Millisecond), last.Sub(killed).Round(time.Millisecond))
		assert.False(t, first.Before(killed), "a request failed %v before the kill", killed.Sub(first))
		assert.Less(t, back.Sub(killed), 10*time.Second, "time to restart")
		assert.Equal(t, failed, res.failedBetween(killed, back), "every failure lies between the kill and the recovery")
		assert.Equal(t, before+1, restartCount(t, p, app), "restarts")
	})

	t.Run("memory limit: OOM kill, then a restart", func(t *testing.T) {
		limit := bytesOf(t, strings.ToUpper(cf.Services[appService].MemLimit))
		cg := memoryCgroup(t, pidOf(t, p, app))
		assert.Equal(t, strconv.FormatInt(limit, 10), readTrim(t, filepath.Join(cg, "memory.limit_in_bytes")), "the container's memory cgroup limit is mem_limit")
		before := restartCount(t, p, app)
		start := time.Now()
		var allocated int
		for allocated < int(2*limit>>20) {
			resp, err := c.Get(base + "/debug/alloc?mib=64")
			if err != nil {
				break
			}
			drain(resp)
			if resp.StatusCode != http.StatusOK {
				break // the process died under the request: nginx's 502
			}
			allocated += 64
		}
		killed := time.Now()
		t.Logf("allocated %d MiB in answered requests before the kill (limit %d MiB, GOMEMLIMIT %s)", allocated, limit>>20, cf.Services[appService].Env["GOMEMLIMIT"])
		assert.Less(t, allocated, int(limit>>20), "the limit stopped the allocations")
		took, err := testenv.WaitFor("restart after the OOM kill", 30*time.Second, 50*time.Millisecond, func() bool {
			if restartCount(t, p, app) <= before {
				return false
			}
			resp, err := c.Get(base + "/healthz")
			if err != nil {
				return false
			}
			drain(resp)
			return resp.StatusCode == http.StatusOK
		})
		require.NoError(t, err)
		t.Logf("OOM kill (the request that died) to serving again: %v", took.Round(time.Millisecond))
		assert.WithinDuration(t, killed, killed.Add(took), 30*time.Second)
		assert.Contains(t, kernelLog(t, start), "Memory cgroup out of memory", "the kernel's OOM killer acted on the container's cgroup")
	})

	t.Run("a full log disk costs log lines, counted, not requests", func(t *testing.T) {
		logDir := cf.Services[appService].Env["LOG_DIR"]
		root := fmt.Sprintf("/proc/%d/root%s", pidOf(t, p, app), logDir)
		filler := filepath.Join(root, "filler")
		fill(t, filler)
		for i := range 20 {
			resp := get(t, c, base+"/")
			drain(resp)
			require.Equal(t, http.StatusOK, resp.StatusCode, "request %d on a full log disk", i)
		}
		_, err := testenv.WaitFor("the failed log writes reported", 15*time.Second, 200*time.Millisecond, func() bool {
			return strings.Contains(p.Logs(app, 0), `"msg":"logfile: buffered write failed"`)
		})
		assert.NoError(t, err)

		// Room again: lines land again.
		require.NoError(t, os.Remove(filler))
		resp := get(t, c, base+"/?room=again")
		drain(resp)
		_, err = testenv.WaitFor("a line after the disk has room", 10*time.Second, 100*time.Millisecond, func() bool {
			b, _ := os.ReadFile(filepath.Join(root, "access.log"))
			return bytes.Contains(b, []byte("GET /?room=again "))
		})
		assert.NoError(t, err)

		// The total, at a graceful stop (SIGTERM, which drains and flushes).
		out, err := p.Command(t.Context(), "stop", app).CombinedOutput()
		require.NoError(t, err, "podman stop: %s", out)
		assert.Equal(t, "0", p.Inspect(t, app, "{{.State.ExitCode}}"), "exit status after SIGTERM")
		dropped := -1
		sc := bufio.NewScanner(strings.NewReader(p.Logs(app, 0)))
		for sc.Scan() {
			var rec struct {
				Msg   string `json:"msg"`
				Lines int    `json:"lines"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "access log lines dropped" {
				dropped = rec.Lines
			}
		}
		t.Logf("access log lines dropped while the disk was full: %d", dropped)
		assert.GreaterOrEqual(t, dropped, 20, "the dropped lines reported at exit (the 20 requests)")
	})
}

// publishedPortClient is an HTTPS client for a port podman published on
// 127.0.0.1. It connects from 127.0.0.1 (podman's port forwarding rewrites
// the source of loopback traffic only from there), and is seen by the
// containers as the network's gateway.
func publishedPortClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: caPool(t, caFile)},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second, CheckRedirect: noRedirect}
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for range 1 << 12 {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, syscall.ENOSPC, "filling %s", path)
}

func restartCount(t *testing.T, p *testenv.Podman, id string) int {
	t.Helper()
	n, err := strconv.Atoi(p.Inspect(t, id, "{{.RestartCount}}"))
	require.NoError(t, err)
	return n
}

// servicePid is the service's process in a container with init: true,
// the only child of the init process.
func servicePid(t *testing.T, p *testenv.Podman, id string) int {
	t.Helper()
	initPid := pidOf(t, p, id)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", initPid, initPid))
	require.NoError(t, err)
	f := strings.Fields(string(b))
	require.Len(t, f, 1, "children of the container's init %d", initPid)
	pid, err := strconv.Atoi(f[0])
	require.NoError(t, err)
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	require.NoError(t, err)
	require.Equal(t, "shipshape", strings.TrimSpace(string(comm)), "the init's child")
	return pid
}

// memoryCgroup is the directory of pid's memory cgroup (cgroup v1).
func memoryCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && f[1] == "memory" {
			return filepath.Join("/sys/fs/cgroup/memory", f[2])
		}
	}
	t.Fatalf("no memory cgroup (v1) for %d:\n%s", pid, b)
	return ""
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// kernelLog is what the kernel logged since start (its ring buffer, read
// as root).
func kernelLog(t *testing.T, since time.Time) string {
	t.Helper()
	// Non-blocking: a read at the end of the buffer returns EAGAIN.
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer syscall.Close(fd)
	var boot time.Time
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if up, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64); err == nil {
			boot = time.Now().Add(-time.Duration(up * float64(time.Second)))
		}
	}
	var out strings.Builder
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) || n <= 0 {
			break
		}
		if errors.Is(err, syscall.EPIPE) {
			continue // records overwritten while reading
		}
		// "priority,seq,usec,flags;message"
		head, msg, ok := strings.Cut(string(buf[:n]), ";")
		f := strings.Split(head, ",")
		if !ok || len(f) < 3 {
			continue
		}
		usec, _ := strconv.ParseInt(f[2], 10, 64)
		if boot.Add(time.Duration(usec) * time.Microsecond).Before(since.Add(-time.Second)) {
			continue
		}
		out.WriteString(msg)
	}
	return out.String()
}

// probe sends GET url every interval until stopped and records each
// outcome.
type probe struct {
	mu   sync.Mutex
	res  probeResults
	done chan struct{}
	wg   sync.WaitGroup
}

type probeResult struct {
	at time.Time // when the request was sent
	ok bool      // 200
}

type probeResults []probeResult

func startProbe(c *http.Client, url string, interval time.Duration) *probe {
	pr := &probe{done: make(chan struct{})}
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			at := time.Now()
			ok := false
			if resp, err := c.Get(url); err == nil {
				drain(resp)
				ok = resp.StatusCode == http.StatusOK
			}
			pr.mu.Lock()
			pr.res = append(pr.res, probeResult{at, ok})
			pr.mu.Unlock()
			select {
			case <-pr.done:
				return
			case <-tick.C:
			}
		}
	}()
	return pr
}

// okSince reports whether a request sent after t succeeded.
func (pr *probe) okSince(t time.Time) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, r := range pr.res {
		if r.ok && r.at.After(t) {
			return true
		}
	}
	return false
}

func (pr *probe) stop() probeResults {
	close(pr.done)
	pr.wg.Wait()
	return pr.res
}

// failures returns when the first and the last failed request were sent,
// and how many failed.
func (res probeResults) failures() (first, last time.Time, n int) {
	for _, r := range res {
		if r.ok {
			continue
		}
		if n == 0 {
			first = r.at
		}
		last = r.at
		n++
	}
	return first, last, n
}

// okAfter is when the first successful request sent after t was sent.
func (res probeResults) okAfter(t time.Time) time.Time {
	for _, r := range res {
		if r.ok && r.at.After(t) {
			return r.at
		}
	}
	return time.Time{}
}

// failedBetween counts the failed requests sent within [from, to).
func (res probeResults) failedBetween(from, to time.Time) int {
	n := 0
	for _, r := range res {
		if !r.ok && !r.at.Before(from) && r.at.Before(to) {
			n++
		}
	}
	return n
}
