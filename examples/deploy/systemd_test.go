package deploy

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

// unit is a parsed systemd unit file: section → key → values in order (a
// key may be repeated; an empty assignment is kept as "").
type unit map[string]map[string][]string

// parseUnit parses the subset of the unit file syntax that
// shipshape.service uses: sections, key=value lines, comments, and lines
// continued with a trailing backslash.
func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	var pending string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %d: not key=value: %q", n, line)
		require.NotEmpty(t, section, "line %d: key before any section", n)
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	require.NoError(t, sc.Err())
	return u
}

// get is the last value of a key ("" when absent), as systemd reads a
// single-valued setting.
func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// env is the unit's Environment= assignments.
func (u unit) env() map[string]string {
	m := map[string]string{}
	for _, v := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(v) {
			if k, val, ok := strings.Cut(kv, "="); ok {
				m[k] = val
			}
		}
	}
	return m
}

// bytesOf parses a systemd or Go memory size: 512M, 1G, 350MiB, 65536.
func bytesOf(t *testing.T, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)([KMGT]?)(i?B)?$`).FindStringSubmatch(s)
	require.NotNil(t, m, "size %q", s)
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	return n << shift
}

func TestSystemdUnitSettings(t *testing.T) {
	u := parseUnit(t, readFile(t, "shipshape.service"))
	s := func(key string) string { return u.get("Service", key) }
	env := u.env()

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"restarts always, forever, except on a configuration error", func(t *testing.T) {
			assert.Equal(t, "always", s("Restart"), "Restart")
			assert.NotEmpty(t, s("RestartSec"), "RestartSec")
			assert.Equal(t, "0", u.get("Unit", "StartLimitIntervalSec"), "StartLimitIntervalSec (no give-up)")
			assert.Equal(t, "2", s("RestartPreventExitStatus"), "RestartPreventExitStatus: the server's exit status for a bad command line")
		}},
		{"reload and stop", func(t *testing.T) {
			assert.Equal(t, "/bin/kill -HUP $MAINPID", s("ExecReload"), "ExecReload")
			assert.Equal(t, "mixed", s("KillMode"), "KillMode")
			assert.Equal(t, "SIGTERM", s("KillSignal"), "KillSignal")
			d, err := time.ParseDuration(s("TimeoutStopSec"))
			require.NoError(t, err, "TimeoutStopSec %q", s("TimeoutStopSec"))
			assert.Greater(t, d, 12*time.Second, "TimeoutStopSec: the server drains for 10s, plus margin")
		}},
		{"resource limits", func(t *testing.T) {
			high, limit := bytesOf(t, s("MemoryHigh")), bytesOf(t, s("MemoryMax"))
			assert.Less(t, high, limit, "MemoryHigh < MemoryMax")
			assert.Less(t, bytesOf(t, env["GOMEMLIMIT"]), high, "GOMEMLIMIT < MemoryHigh")
			nofile, err := strconv.Atoi(s("LimitNOFILE"))
			require.NoError(t, err, "LimitNOFILE")
			assert.GreaterOrEqual(t, nofile, 4096, "LimitNOFILE")
			tasks, err := strconv.Atoi(s("TasksMax"))
			require.NoError(t, err, "TasksMax")
			assert.Positive(t, tasks, "TasksMax")
		}},
		{"hardening", func(t *testing.T) {
			for key, want := range map[string]string{
				"NoNewPrivileges":         "yes",
				"DynamicUser":             "yes",
				"ProtectSystem":           "strict",
				"ProtectHome":             "yes",
				"PrivateTmp":              "yes",
				"PrivateDevices":          "yes",
				"ProtectKernelTunables":   "yes",
				"ProtectKernelModules":    "yes",
				"ProtectKernelLogs":       "yes",
				"ProtectControlGroups":    "yes",
				"RestrictNamespaces":      "yes",
				"RestrictSUIDSGID":        "yes",
				"LockPersonality":         "yes",
				"MemoryDenyWriteExecute":  "yes",
				"SystemCallArchitectures": "native",
				"CapabilityBoundingSet":   "",
				"AmbientCapabilities":     "",
			} {
				_, set := u["Service"][key]
				assert.True(t, set, "%s is not set", key)
				assert.Equal(t, want, s(key), key)
			}
			assert.Equal(t, "@system-service", u["Service"]["SystemCallFilter"][0], "SystemCallFilter starts from @system-service")
			families := strings.Fields(s("RestrictAddressFamilies"))
			assert.ElementsMatch(t, []string{"AF_INET", "AF_INET6", "AF_UNIX"}, families, "RestrictAddressFamilies")
		}},
		{"the server writes only to its LogsDirectory", func(t *testing.T) {
			assert.Equal(t, "/var/log/"+s("LogsDirectory"), env["LOG_DIR"], "LOG_DIR is the LogsDirectory")
		}},
		{"listens on loopback and trusts only the local proxy", func(t *testing.T) {
			assert.True(t, strings.HasPrefix(env["ADDR"], "127.0.0.1:"), "ADDR %q", env["ADDR"])
			assert.Equal(t, "127.0.0.1/32,::1/128", env["TRUSTED_PROXIES"], "TRUSTED_PROXIES")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestSystemdExitStatusOfBadConfig checks the exit status that
// RestartPreventExitStatus names: the server's for a bad command line or
// environment, and not the one of a runtime failure.
func TestSystemdExitStatusOfBadConfig(t *testing.T) {
	u := parseUnit(t, readFile(t, "shipshape.service"))
	want, err := strconv.Atoi(u.get("Service", "RestartPreventExitStatus"))
	require.NoError(t, err)
	bin := productionBinary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()

	tests := []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{name: "bad flag", args: []string{"-rate-limit", "many"}, want: want},
		{name: "bad environment", env: []string{"RATE_WINDOW=soon"}, want: want},
		{name: "address in use is not a configuration error", args: []string{"-addr", busy.Addr().String()}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"-log-dir", ""}, tt.args...)...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tt.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "output:\n%s", out)
			assert.Equal(t, tt.want, exit.ExitCode(), "exit status; output:\n%s", out)
		})
	}
}

// unitForTest is shipshape.service with ExecStart pointing at bin, which
// systemd-analyze verify requires to exist.
func unitForTest(t *testing.T, bin string) string {
	t.Helper()
	text, err := applyRewrites(readFile(t, "shipshape.service"),
		[]rewrite{{old: "ExecStart=/usr/local/bin/shipshape\n", new: "ExecStart=" + bin + "\n", n: 1}}, false)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "shipshape.service")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestSystemdAnalyze(t *testing.T) {
	analyze := testenv.LookPath(t, "systemd-analyze", "systemd")
	path := unitForTest(t, productionBinary(t))

	t.Run("verify", func(t *testing.T) {
		// verify exits 0 on unknown keys and bad values; it only prints
		// them, so any output fails the test.
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		require.NoError(t, err, "systemd-analyze verify:\n%s", out)
		assert.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify printed warnings")
	})

	t.Run("security exposure at most 2.0", func(t *testing.T) {
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for shipshape\.service: (\d+\.\d+)`).FindSubmatch(out)
		require.NotNil(t, m, "no exposure level in:\n%s", out)
		t.Logf("systemd-analyze security: exposure %s", m[1])
		require.NoError(t, err, "exposure %s is above 2.0:\n%s", m[1], out)
	})
}

// syscallGroups parses `systemd-analyze syscall-filter`: every group and
// its members (system calls and other groups).
func syscallGroups(t *testing.T, analyze string) map[string][]string {
	t.Helper()
	out, err := exec.Command(analyze, "syscall-filter").Output()
	require.NoError(t, err, "systemd-analyze syscall-filter")
	groups := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "@"):
			cur = strings.Fields(line)[0]
		case cur == "" || strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
		case line[0] == ' ' || line[0] == '\t':
			groups[cur] = append(groups[cur], strings.Fields(line)[0])
		default:
			cur = ""
		}
	}
	require.Contains(t, groups, "@system-service", "syscall-filter output")
	return groups
}

// expandSyscalls resolves names (system calls and @groups) to system calls.
func expandSyscalls(groups map[string][]string, names []string, into map[string]bool) {
	for _, n := range names {
		if strings.HasPrefix(n, "@") {
			expandSyscalls(groups, groups[n], into)
			continue
		}
		into[n] = true
	}
}

// allowedSyscalls is what the unit's SystemCallFilter lines let through:
// the allow lists, minus the ~ deny lists.
func allowedSyscalls(t *testing.T, analyze string, filters []string) map[string]bool {
	t.Helper()
	groups := syscallGroups(t, analyze)
	allow, deny := map[string]bool{}, map[string]bool{}
	for _, f := range filters {
		if rest, ok := strings.CutPrefix(f, "~"); ok {
			expandSyscalls(groups, strings.Fields(rest), deny)
			continue
		}
		expandSyscalls(groups, strings.Fields(f), allow)
	}
	for s := range deny {
		delete(allow, s)
	}
	require.NotEmpty(t, allow, "SystemCallFilter allows nothing: %q", filters)
	return allow
}

// TestSystemdSyscallFilterAllowsServer runs the production build under
// strace with the unit's environment, exercises every route and a graceful
// stop, and checks that each system call it made passes the unit's
// SystemCallFilter: a call the filter refuses would fail with EPERM under
// systemd, in a path no other test could see.
func TestSystemdSyscallFilterAllowsServer(t *testing.T) {
	analyze := testenv.LookPath(t, "systemd-analyze", "systemd")
	strace := testenv.LookPath(t, "strace", "strace")
	u := parseUnit(t, readFile(t, "shipshape.service"))
	allowed := allowedSyscalls(t, analyze, u["Service"]["SystemCallFilter"])
	bin := productionBinary(t)

	port := testenv.FreePort(t)
	addr := testenv.Addr(port)
	summary := filepath.Join(t.TempDir(), "strace.txt")
	env := u.env()
	env["ADDR"] = addr
	env["LOG_DIR"] = t.TempDir()
	env["DEBUG_PANIC"] = "true"
	cmd := exec.Command(strace, "-f", "-qq", "-c", "-o", summary, bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	proc := testenv.Start(t, "strace", cmd, addr)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/api/hello", ""},
		{"GET", "/static/" + fingerprinted, ""},
		{"GET", "/static/style.css", ""},
		{"GET", "/healthz", ""},
		{"GET", "/debug/panic", ""},
		{"GET", "/api/stream", ""},
		{"POST", "/api/echo", `{"a":1}`},
		{"GET", "/nope", ""},
	} {
		req, err := http.NewRequest(r.method, "http://"+addr+r.path, strings.NewReader(r.body))
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		require.NoError(t, err, "%s %s", r.method, r.path)
		drain(resp)
	}

	// SIGTERM to the server (strace's child), not to strace, so that the
	// graceful stop is traced too.
	children, err := os.ReadFile("/proc/" + strconv.Itoa(proc.Pid()) + "/task/" + strconv.Itoa(proc.Pid()) + "/children")
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.Fields(string(children))[0])
	require.NoError(t, err, "server pid in %q", children)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	select {
	case <-proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("server under strace did not stop after SIGTERM")
	}

	out, err := os.ReadFile(summary)
	require.NoError(t, err)
	var used []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(line, "%") || strings.HasPrefix(line, "-") || f[len(f)-1] == "total" {
			continue
		}
		used = append(used, f[len(f)-1])
	}
	require.NotEmpty(t, used, "no system calls in the strace summary:\n%s", out)
	slices.Sort(used)
	var refused []string
	for _, s := range used {
		if !allowed[s] {
			refused = append(refused, s)
		}
	}
	assert.Empty(t, refused, "system calls the server made that SystemCallFilter refuses (all used: %v)", used)
}
