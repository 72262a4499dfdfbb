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

// mimeTypes is the one file outside the test's directories that
// nginx.conf may read as it is: it comes with the nginx package.
const mimeTypes = "/etc/nginx/mime.types"

// fingerprintCases are static file names, beside the real ones, on which
// nginx.conf's fingerprint rule must agree with the Go static package
// (immutable for a year, or not).
var fingerprintCases = map[string]string{
	"vendor.3F9A1C2B.min.js": "uppercase hash, not before the extension",
	"0123abcd.css":           "hash as the whole stem",
	"report.20240131.pdf":    "a date: digits only, not a hash",
	"app.3f9a1c2.js":         "7 hex digits: too short",
	"notes.deadbeefcafe":     "hash as the extension",
	"read.abcdefgh.txt":      "not hex",
}

// nginxRewrites is the explicit table of what the test changes in
// nginx.conf: ports, paths, the IPv6 listeners (IPv6 may be absent), and
// the worker user. Everything else runs as shipped.
func nginxRewrites(dir, certDir, root string, appPort, httpPort, httpsPort int) []rewrite {
	// As root, workers would switch to www-data and could not read the
	// test's 0700 temporary directories; not as root, nginx cannot switch
	// users at all (and warns about the directive).
	user := "user root;"
	if os.Geteuid() != 0 {
		user = "# user www-data;"
	}
	return []rewrite{
		{old: "user www-data;", new: user, n: 1},
		{old: "pid /run/nginx.pid;", new: "pid " + dir + "/nginx.pid;", n: 1, pathOnly: true},
		{old: "error_log /var/log/nginx/error.log warn;", new: "error_log " + dir + "/error.log warn;", n: 1, pathOnly: true},
		{old: "access_log /var/log/nginx/access.log combined;", new: "access_log " + dir + "/access.log combined;", n: 1, pathOnly: true},
		{old: " /var/lib/nginx/", new: " " + dir + "/", n: 5, pathOnly: true}, // the five temp paths
		{old: "/etc/shipshape/tls/", new: certDir + "/", n: 2, pathOnly: true},
		{old: "root /srv/shipshape;", new: "root " + root + ";", n: 1, pathOnly: true},
		{old: "server 127.0.0.1:8080;", new: "server 127.0.0.1:" + strconv.Itoa(appPort) + ";", n: 1},
		{old: "listen 80 default_server;", new: "listen 127.0.0.1:" + strconv.Itoa(httpPort) + " default_server;", n: 1},
		{old: "listen [::]:80 default_server;", new: "# listen [::]:80 default_server;", n: 1},
		{old: "listen 443 ssl http2 default_server;", new: "listen 127.0.0.1:" + strconv.Itoa(httpsPort) + " ssl http2 default_server;", n: 1},
		{old: "listen [::]:443 ssl http2 default_server;", new: "# listen [::]:443 ssl http2 default_server;", n: 1},
	}
}

// nginxTest runs `nginx -t` on conf (written to dir/name) and fails on
// errors and warnings.
func nginxTest(t *testing.T, bin, dir, name, conf string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", path).CombinedOutput()
	require.NoError(t, err, "nginx -t:\n%s\nconfiguration:\n%s", out, conf)
	var allow []string
	if os.Geteuid() != 0 {
		allow = append(allow, `the "user" directive makes sense only if the master process runs with super-user privileges`)
	}
	checkOutput(t, "nginx -t", string(out), allow...)
	return path
}

func TestNginx(t *testing.T) {
	t.Parallel()
	bin := testenv.LookPath(t, "nginx", "nginx")
	shipped := readFile(t, "nginx.conf")
	a := startApp(t)
	certDir := certs(t)
	extra := map[string]string{}
	for name := range fingerprintCases {
		extra[name] = "content of " + name + "\n"
	}
	root := copyStatic(t, extra)
	dir := t.TempDir()
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	table := nginxRewrites(dir, certDir, root, a.Port, httpPort, httpsPort)

	t.Run("nginx -t on the shipped config, paths moved", func(t *testing.T) {
		conf, err := applyRewrites(shipped, table, true)
		require.NoError(t, err)
		nginxTest(t, bin, dir, "shipped.conf", conf)
	})

	conf, err := applyRewrites(shipped, table, false)
	require.NoError(t, err)
	require.Empty(t, leftovers(conf, "listen", dir, certDir, root, mimeTypes),
		"rewritten nginx.conf still points at the host: add these to the rewrite table")
	path := nginxTest(t, bin, dir, "nginx.conf", conf)
	testenv.Start(t, "nginx", exec.Command(bin, "-g", "daemon off;", "-p", dir+"/", "-c", path),
		testenv.Addr(httpPort), testenv.Addr(httpsPort))
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
	})

	p := &proxy{
		app:            a,
		httpPort:       httpPort,
		httpsPort:      httpsPort,
		caFile:         filepath.Join(certDir, "ca.pem"),
		wantRedirect:   "https://127.0.0.1/api/hello?x=1", // $host has no port
		staticFromDisk: true,
		// limit_req rate=50r/s burst=100 nodelay: 101 at once, then 50/s.
		floodAllowed: 101,
		floodSent:    400,
		checkStatic: func(t *testing.T, c *http.Client, base string) int {
			checkNginxStatic(t, c, base, filepath.Join(root, "static"))
			return 0
		},
	}
	p.run(t)
}

// checkNginxStatic checks the files nginx serves from disk: the
// precompressed variant as it is on disk, the cache policy, and the same
// fingerprint rule as the Go static package.
func checkNginxStatic(t *testing.T, c *http.Client, base, dir string) {
	t.Run("precompressed variant from disk", func(t *testing.T) {
		resp := get(t, c, base+"/static/"+fingerprinted, "Accept-Encoding", "gzip")
		raw := checkGzipped(t, resp, staticFile(t, fingerprinted))
		assert.Equal(t, string(staticFile(t, fingerprinted+".gz")), string(raw), "bytes sent: want the .gz file as it is on disk (gzip_static)")
		assert.Equal(t, static.CacheImmutable, resp.Header.Get("Cache-Control"), "Cache-Control of a fingerprinted name")
		assert.Equal(t, hsts, resp.Header.Get("Strict-Transport-Security"), "HSTS (add_header in a location drops the server's)")
		assert.Empty(t, resp.Header.Get("Ratelimit"), "served by nginx, not the application")

		resp = get(t, c, base+"/static/"+fingerprinted)
		drain(resp)
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "Content-Encoding without Accept-Encoding: gzip")
	})

	t.Run("expires on other files", func(t *testing.T) {
		resp := get(t, c, base+"/static/style.css")
		drain(resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "status")
		assert.Equal(t, "max-age=3600", resp.Header.Get("Cache-Control"), "Cache-Control")
		date, err := http.ParseTime(resp.Header.Get("Date"))
		require.NoError(t, err, "Date")
		expires, err := http.ParseTime(resp.Header.Get("Expires"))
		require.NoError(t, err, "Expires")
		assert.Equal(t, time.Hour, expires.Sub(date), "Expires − Date")
		assert.Equal(t, hsts, resp.Header.Get("Strict-Transport-Security"), "HSTS")
	})

	t.Run("fingerprint rule agrees with the static package", func(t *testing.T) {
		names := []string{fingerprinted, "style.css"}
		for name := range fingerprintCases {
			names = append(names, name)
		}
		for _, name := range names {
			resp := get(t, c, base+"/static/"+name)
			drain(resp)
			require.Equal(t, http.StatusOK, resp.StatusCode, "status of %s", name)
			got := strings.Join(resp.Header.Values("Cache-Control"), ", ")
			want := staticCacheControl(t, dir, name)
			assert.Equal(t, strings.Contains(want, "immutable"), strings.Contains(got, "immutable"),
				"%s (%s): nginx sends %q, the static package %q", name, fingerprintCases[name], got, want)
		}
	})
}
