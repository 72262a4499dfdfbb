package deploy

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/static"
)

// haproxyRewrites is the explicit table of what the test changes in
// haproxy.cfg: ports, paths, the IPv6 binds (IPv6 may be absent), and, when
// the test does not run as root, the chroot and user switch that only root
// can make. Everything else runs as shipped.
func haproxyRewrites(certDir, chroot string, appPort, httpPort, httpsPort int) []rewrite {
	root := os.Geteuid() == 0
	chrootLine, user, group := "chroot "+chroot, "user haproxy", "group haproxy"
	if !root {
		chrootLine, user, group = "# chroot", "# user haproxy", "# group haproxy"
	}
	return []rewrite{
		{old: "chroot /var/lib/haproxy", new: chrootLine, n: 1, pathOnly: true},
		{old: "    user haproxy\n", new: "    " + user + "\n", n: 1},
		{old: "    group haproxy\n", new: "    " + group + "\n", n: 1},
		{old: "/etc/shipshape/tls/", new: certDir + "/", n: 2, pathOnly: true},
		{old: "bind :80\n", new: "bind 127.0.0.1:" + strconv.Itoa(httpPort) + "\n", n: 1},
		{old: "bind :::80 v6only\n", new: "# bind :::80 v6only\n", n: 1},
		{old: "bind :443 ssl ", new: "bind 127.0.0.1:" + strconv.Itoa(httpsPort) + " ssl ", n: 1},
		{old: "bind :::443 v6only ssl ", new: "# bind :::443 v6only ssl ", n: 1},
		{old: "server app1 127.0.0.1:8080 ", new: "server app1 127.0.0.1:" + strconv.Itoa(appPort) + " ", n: 1},
	}
}

// haproxyCheck runs `haproxy -c` on cfg and fails on errors and warnings.
func haproxyCheck(t *testing.T, bin, dir, cfg string) {
	t.Helper()
	path := filepath.Join(dir, "haproxy-check.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput()
	require.NoError(t, err, "haproxy -c:\n%s\nconfiguration:\n%s", out, cfg)
	checkOutput(t, "haproxy -c", string(out))
}

func TestHAProxy(t *testing.T) {
	t.Parallel()
	bin := testenv.LookPath(t, "haproxy", "haproxy")
	shipped := readFile(t, "haproxy.cfg")
	a := startApp(t)
	certDir := certs(t)
	chroot := t.TempDir()
	dir := t.TempDir()
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	table := haproxyRewrites(certDir, chroot, a.Port, httpPort, httpsPort)

	t.Run("haproxy -c on the shipped config, paths moved", func(t *testing.T) {
		cfg, err := applyRewrites(shipped, table, true)
		require.NoError(t, err)
		haproxyCheck(t, bin, dir, cfg)
	})

	cfg, err := applyRewrites(shipped, table, false)
	require.NoError(t, err)
	require.Empty(t, leftovers(cfg, "bind", certDir, chroot),
		"rewritten haproxy.cfg still points at the host: add these to the rewrite table")
	haproxyCheck(t, bin, dir, cfg)
	h := testenv.StartHAProxy(t, cfg, httpPort, httpsPort)

	t.Run("health check on /healthz passes", func(t *testing.T) {
		// option log-health-checks logs the first check's result.
		ok := assert.Eventually(t, func() bool {
			return strings.Contains(h.Process().Output(), "Health check for server shipshape/app1 succeeded, reason: Layer7 check passed, code: 200")
		}, 10*time.Second, 50*time.Millisecond, "HAProxy's health check of the application")
		if !ok {
			t.Logf("haproxy output:\n%s", h.Process().Output())
		}
	})

	p := &proxy{
		app:       a,
		httpPort:  httpPort,
		httpsPort: httpsPort,
		caFile:    filepath.Join(certDir, "ca.pem"),
		// redirect scheme https keeps the Host header, port included.
		wantRedirect: "https://" + testenv.Addr(httpPort) + "/api/hello?x=1",
		checkStatic:  checkHAProxyStatic,
		// deny if sc0_http_req_rate gt 500, over 10s.
		floodAllowed: 500,
		floodSent:    600,
	}
	p.run(t)
}

// checkHAProxyStatic checks a static file through HAProxy, which passes it
// to the application's static package: the precompressed variant and the
// immutable cache policy of a fingerprinted name. It returns the number of
// requests that reached the application.
func checkHAProxyStatic(t *testing.T, c *http.Client, base string) int {
	resp := get(t, c, base+"/static/"+fingerprinted, "Accept-Encoding", "gzip")
	checkGzipped(t, resp, staticFile(t, fingerprinted))
	assert.Equal(t, static.CacheImmutable, resp.Header.Get("Cache-Control"), "Cache-Control of a fingerprinted name")
	assert.Equal(t, hsts, resp.Header.Get("Strict-Transport-Security"), "HSTS")
	assert.Equal(t, 2, resp.ProtoMajor, "HTTP version: got %s", resp.Proto)
	return 1
}
