package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// staticDir holds the example service's static files on disk (the server
// embeds the same files); nginx serves them from a copy of this directory.
const staticDir = "../internal/app/static"

// fingerprinted is a static file with a content hash in its name and a
// precompressed .gz variant beside it.
const fingerprinted = "app.3f9a1c2b.js"

// A build of examples/server, made once per test binary.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	buildDir string // holds every build; removed by TestMain
	builds   = map[string]*build{"app": {}, "production": {}}
	buildMu  sync.Mutex
)

// appBinary is examples/server for the end-to-end tests: built with -race
// when the tests run with it, which shares the build cache with the other
// packages' race-enabled tests and makes a data race in the server under
// real proxied traffic fail the test (exit status 66 at shutdown).
func appBinary(t testing.TB) string {
	t.Helper()
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	return buildServer(t, "app", nil, flags...)
}

// productionBinary is examples/server built the way the Dockerfile builds
// it (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"): the binary that the
// systemd unit and the image run.
func productionBinary(t testing.TB) string {
	t.Helper()
	return buildServer(t, "production", []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w")
}

func buildServer(t testing.TB, name string, env []string, flags ...string) string {
	t.Helper()
	buildMu.Lock()
	b := builds[name]
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "shipshape-deploy-")
		if err != nil {
			buildMu.Unlock()
			t.Fatal(err)
		}
		buildDir = dir
	}
	dir := buildDir
	buildMu.Unlock()
	b.once.Do(func() {
		goBin, err := goTool()
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		args := append(append([]string{"build"}, flags...), "-o", b.path, "../server")
		cmd := exec.Command(goBin, args...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goTool is the go command of the toolchain running the tests.
func goTool() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

// rateLimit is the limit per minute the test servers run with: small, so
// that a test reaches it in a few requests.
const rateLimit = 12

// app is examples/server running as a subprocess on a loopback port.
type app struct {
	Addr   string
	Port   int
	LogDir string

	cmd  *exec.Cmd
	proc *testenv.Process
}

// startApp starts examples/server trusting X-Forwarded-For from
// 127.0.0.1 only (the proxy), with a small rate limit, no slow-down (it
// would only slow the test), /debug/panic, and its access log in a
// temporary directory. The environment is empty apart from PATH, so a
// developer's REDIS_URL or SENTRY_DSN cannot leak in.
func startApp(t *testing.T) *app {
	t.Helper()
	bin := appBinary(t)
	port := testenv.FreePort(t)
	a := &app{Port: port, Addr: testenv.Addr(port), LogDir: t.TempDir()}
	a.cmd = exec.Command(bin,
		"-addr", a.Addr,
		"-trusted-proxies", "127.0.0.1/32",
		"-rate-limit", strconv.Itoa(rateLimit), "-rate-window", "1m",
		"-slow-after", "0",
		"-log-dir", a.LogDir, "-log-format", "json",
		"-debug-panic")
	a.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	a.proc = testenv.Start(t, "shipshape", a.cmd, a.Addr)
	return a
}

// stop sends SIGTERM and waits for the graceful shutdown, which must end
// with exit status 0 after the access log is flushed.
func (a *app) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, a.proc.Signal(syscall.SIGTERM))
	select {
	case <-a.proc.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("server still running 15s after SIGTERM; output:\n%s", a.proc.Output())
	}
	assert.Equal(t, 0, a.cmd.ProcessState.ExitCode(), "exit status after SIGTERM; output:\n%s", a.proc.Output())
}

// accessLog returns the lines of the server's access log.
func (a *app) accessLog(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.LogDir, "access.log"))
	require.NoError(t, err, "access log")
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// certs runs gen-cert.sh into a temporary directory and returns it.
func certs(t *testing.T) string {
	t.Helper()
	testenv.LookPath(t, "openssl", "openssl")
	dir := t.TempDir()
	out, err := exec.Command("sh", "gen-cert.sh", dir).CombinedOutput()
	require.NoError(t, err, "gen-cert.sh: %s", out)
	return dir
}

// rewrite replaces old, which must occur exactly n times, with new.
type rewrite struct {
	old, new string
	n        int
	// pathOnly marks rewrites of file paths, the only ones applied when
	// a config is checked as shipped (nginx -t, haproxy -c): the listeners,
	// IPv6 lines and user switches stay as they are there.
	pathOnly bool
}

// applyRewrites applies the rewrites in order (only those marked pathOnly
// when pathsOnly is set) to the configuration outside comments (from # to
// the end of a line; the configs have no # inside values). It fails when a
// rewrite finds old a different number of times than it expects: a config
// edit that changes a rewritten line must update the table, so it cannot
// slip past the tests.
func applyRewrites(conf string, table []rewrite, pathsOnly bool) (string, error) {
	lines := strings.SplitAfter(conf, "\n")
	var errs []error
	for _, rw := range table {
		if pathsOnly && !rw.pathOnly {
			continue
		}
		got := 0
		for i, l := range lines {
			code, comment := splitComment(l)
			got += strings.Count(code, rw.old)
			lines[i] = strings.ReplaceAll(code, rw.old, rw.new) + comment
		}
		if got != rw.n {
			errs = append(errs, fmt.Errorf("deploy: %q occurs %d times in the config, the rewrite table expects %d", rw.old, got, rw.n))
		}
	}
	return strings.Join(lines, ""), errors.Join(errs...)
}

// splitComment splits a line at its first #.
func splitComment(line string) (code, comment string) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		return line[:i], line[i:]
	}
	return line, ""
}

// systemPath finds absolute paths under the directories a server config
// writes to or reads from on a real host.
var systemPath = regexp.MustCompile(`(?:^|[\s"'=])(/(?:etc|var|run|srv|usr|opt|home|tmp|root)/[^\s;"']*)`)

// leftovers returns what a rewritten config still points at on the host:
// system paths outside the allowed prefixes (the test's directories, and
// files it only reads), and listeners not on 127.0.0.1. A path or listener
// added to a config without a rewrite would otherwise let a test write to
// /var/log or bind port 80. Comments are ignored.
func leftovers(conf, listenKeyword string, allowed ...string) []string {
	var found []string
	for _, line := range strings.Split(conf, "\n") {
		line, _ = splitComment(line)
		for _, m := range systemPath.FindAllStringSubmatch(line, -1) {
			ok := false
			for _, a := range allowed {
				if m[1] == a || strings.HasPrefix(m[1], strings.TrimSuffix(a, "/")+"/") {
					ok = true
				}
			}
			if !ok {
				found = append(found, m[1])
			}
		}
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == listenKeyword && !strings.HasPrefix(f[1], "127.0.0.1:") {
			found = append(found, strings.TrimSpace(line))
		}
	}
	return found
}

// checkOutput fails the test on warnings or errors in what nginx -t or
// haproxy -c printed: a config that only works with warnings is not the
// config the files promise. allow lists warnings that are expected.
func checkOutput(t *testing.T, what, out string, allow ...string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		low := strings.ToLower(line)
		if !strings.Contains(low, "warn") && !strings.Contains(low, "emerg") && !strings.Contains(low, "alert") && !strings.Contains(low, "[crit]") {
			continue
		}
		allowed := false
		for _, a := range allow {
			if strings.Contains(line, a) {
				allowed = true
			}
		}
		assert.True(t, allowed, "%s printed a warning or error: %s", what, line)
	}
}

// copyStatic copies the static files into dir/static (nginx's root is dir)
// and adds files whose names test the fingerprint rule; it returns dir.
func copyStatic(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, "static")
	require.NoError(t, os.Mkdir(dst, 0o755))
	entries, err := os.ReadDir(staticDir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(staticDir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	for name, body := range extra {
		require.NoError(t, os.WriteFile(filepath.Join(dst, name), []byte(body), 0o644))
	}
	return dir
}

// readFile returns a file of the deploy directory.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

// drain reads and closes a response body.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// localAddr is where the test's clients connect from: not the proxy's
// 127.0.0.1, so that the address the application sees proves where it
// came from.
var localAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
