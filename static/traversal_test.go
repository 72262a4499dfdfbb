package static_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/static"
)

// Markers of content that must never reach a client.
var secretMarkers = []string{"SECRET", "root:x:0:0"}

// escapeSite builds a directory with secrets outside the root and traps
// inside it: symbolic links to /etc/passwd, to a file and a directory
// outside the root (relative and absolute), dotfiles and a .git
// directory. It also adds harmless links that stay inside the root. It
// returns the root.
func escapeSite(t testing.TB) string {
	t.Helper()
	outside := t.TempDir()
	root := filepath.Join(outside, "root")
	require.NoError(t, os.CopyFS(root, siteFS(t)))
	writeFile(t, outside, "secret.txt", []byte("SECRET-OUTSIDE-THE-ROOT\n"))
	writeFile(t, outside, "private/key.pem", []byte("SECRET-PRIVATE-KEY\n"))
	writeFile(t, root, ".env", []byte("SECRET_DOTENV=1\n"))
	writeFile(t, root, ".git/config", []byte("[core]\nSECRET-GIT-CONFIG\n"))
	writeFile(t, root, ".git/HEAD", []byte("SECRET-GIT-HEAD\n"))
	writeFile(t, root, "docs/.htpasswd", []byte("SECRET-HTPASSWD\n"))
	links := map[string]string{
		"passwd":             "/etc/passwd",
		"up":                 "../secret.txt",
		"abs":                filepath.Join(outside, "secret.txt"),
		"updir":              "..",
		"privdir":            "../private",
		"docs/deep":          "../../secret.txt",
		"inside":             "index.html", // stays inside: served
		"docslink":           "docs",       // stays inside: served
		"docs/git":           "../.git",    // inside, but to a hidden directory
		"docs/envlink":       "../.env",    // inside, but to a dotfile
		"loop":               "loop",
		"app.js.gz":          "/etc/passwd", // a "variant" that escapes
		"app.js":             "app.3f9a1c2b.js",
		"style.css.br":       "../secret.txt",
		"docs/guide.html.gz": "../../private/key.pem",
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))), "symlink %s", name)
	}
	return root
}

// traversalCorpus are request targets as they appear on the wire.
var traversalCorpus = []string{
	"/../secret.txt",
	"/../../../../etc/passwd",
	"/..%2fsecret.txt",
	"/%2e%2e/secret.txt",
	"/%2e%2e%2fsecret.txt",
	"/%2E%2E/%2E%2E/etc/passwd",
	"/%2e%2e%5csecret.txt",
	"/..%5csecret.txt",
	"/..%5c..%5cetc%5cpasswd",
	"/%252e%252e/secret.txt",
	"/%252e%252e%252fsecret.txt",
	"/..%252fsecret.txt",
	"/..%00/secret.txt",
	"/index.html%00.js",
	"/%00",
	"/%c0%ae%c0%ae/secret.txt",
	"/%c0%ae%c0%ae%c0%afsecret.txt",
	"/%e0%80%ae%e0%80%ae/secret.txt",
	"/%c1%9c..%c1%9csecret.txt",
	"/%u002e%u002e/secret.txt",
	"//etc/passwd",
	"/%2fetc%2fpasswd",
	"/%2F%2Fetc%2Fpasswd",
	"/....//secret.txt",
	"/..;/secret.txt",
	"/.%2e/secret.txt",
	"/%2e./secret.txt",
	"/docs/../../secret.txt",
	"/docs/%2e%2e/%2e%2e/secret.txt",
	"/passwd",
	"/up",
	"/abs",
	"/updir/secret.txt",
	"/updir/root/index.html",
	"/privdir/key.pem",
	"/docs/deep",
	"/loop",
	"/app.js",
	"/style.css",
	"/docs/guide.html",
	"/.env",
	"/%2eenv",
	"/.env.gz",
	"/.git/config",
	"/.git/HEAD",
	"/%2egit/config",
	"/.git%2fconfig",
	"/docs/.htpasswd",
	"/docs/git/config",
	"/docs/envlink",
	"/docs/..%2f.env",
	"/./.env",
	"/.hidden/secret.txt",
	"/CON",
	"/aux.txt",
	"/nul",
	"/C:/Windows/win.ini",
	"/C:%5cWindows%5cwin.ini",
	"/\\..\\secret.txt",
	"http://example.com/../secret.txt",
	"/etc/passwd",
}

func TestTraversalCorpus(t *testing.T) {
	root := escapeSite(t)
	fsys, err := static.Dir(root)
	require.NoError(t, err)
	servers := map[string]http.Handler{
		"dir":       newServer(t, fsys),
		"dir+spa":   newServer(t, fsys, static.WithSPAFallback("index.html")),
		"embed":     newServer(t, siteFS(t)),
		"embed+spa": newServer(t, siteFS(t), static.WithSPAFallback("index.html")),
		"mux+StripPrefix": func() http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/static/", http.StripPrefix("/static", newServer(t, fsys)))
			return mux
		}(),
	}
	index := string(readSite(t, "index.html"))
	// Targets of the corpus that do name a file inside the root.
	legit := map[string]string{
		"/app.js":          string(readSite(t, "app.3f9a1c2b.js")), // a link inside the root
		"/style.css":       string(readSite(t, "style.css")),
		"/docs/guide.html": string(readSite(t, "docs/guide.html")),
	}
	for name, h := range servers {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(h)
			defer ts.Close()
			prefix := ""
			if strings.HasPrefix(name, "mux") {
				prefix = "/static"
			}
			for _, target := range traversalCorpus {
				if strings.HasPrefix(target, "/") {
					target = prefix + target
				}
				for _, ae := range []string{"", "gzip, br, zstd"} {
					status, body := rawGet(t, ts.Listener.Addr().String(), target, ae)
					for _, m := range secretMarkers {
						require.NotContains(t, body, m, "GET %s (Accept-Encoding %q): status %d leaked %q", target, ae, status, m)
					}
					if status == http.StatusOK {
						// The only 200s allowed: the SPA page, or a file
						// that really is inside the root.
						want, isLegit := legit[strings.TrimPrefix(target, prefix)]
						ok := isLegit && body == want || strings.Contains(name, "spa") && body == index
						assert.True(t, ok, "GET %s (Accept-Encoding %q): unexpected 200 with %q", target, ae, firstLine(body))
					}
				}
			}
		})
	}
}

func TestSymlinksInsideTheRoot(t *testing.T) {
	fsys, err := static.Dir(escapeSite(t))
	require.NoError(t, err)
	s := newServer(t, fsys)
	rec := do(s, http.MethodGet, "/inside")
	assert.Equal(t, http.StatusOK, rec.Code, "a link that stays inside is followed")
	assert.Equal(t, readSite(t, "index.html"), rec.Body.Bytes())
	rec = do(s, http.MethodGet, "/docslink/guide.html")
	assert.Equal(t, http.StatusOK, rec.Code, "so is a directory link")
	rec = do(s, http.MethodGet, "/style.css", "Accept-Encoding", "br")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, rec.Header().Get("Content-Encoding"), "a variant that escapes is ignored")
	assert.Equal(t, readSite(t, "style.css"), rec.Body.Bytes())
	rec = do(s, http.MethodGet, "/docs/guide.html", "Accept-Encoding", "gzip")
	assert.NotContains(t, rec.Body.String(), "SECRET")
	assert.Empty(t, rec.Header().Get("Content-Encoding"), "small html, escaping .gz ignored")
}

// TestDirServesHardLinksToOutsideFiles shows what os.Root cannot see, as
// the documentation of Dir says: a hard link in the root to a file
// outside it is that file under a name inside the root, and it is
// served, where a symbolic link to the same file is refused. If this
// test starts to fail, the documentation (Dir, docs/static.md) is what
// must change.
func TestDirServesHardLinksToOutsideFiles(t *testing.T) {
	outside := t.TempDir()
	root := filepath.Join(outside, "root")
	secret := []byte("SECRET-OUTSIDE-THE-ROOT\n")
	writeFile(t, outside, "secret.txt", secret)
	writeFile(t, root, "index.html", []byte("<p>index</p>"))
	require.NoError(t, os.Link(filepath.Join(outside, "secret.txt"), filepath.Join(root, "hard.txt")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "soft.txt")))
	fsys, err := static.Dir(root)
	require.NoError(t, err)
	s := newServer(t, fsys)

	rec := do(s, http.MethodGet, "/hard.txt")
	assert.Equal(t, http.StatusOK, rec.Code, "a hard link is served")
	assert.Equal(t, secret, rec.Body.Bytes(), "with the content of the file outside the root")
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/soft.txt").Code, "a symbolic link to it is not")
}

// rawGet sends target as the request-target of a raw HTTP/1.1 request, so
// that nothing on the client side cleans or re-encodes it, and returns
// the status and body (0 when the server closed without answering).
func rawGet(t *testing.T, addr, target, ae string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n"
	if ae != "" {
		req += "Accept-Encoding: " + ae + "\r\n"
	}
	_, err = io.WriteString(c, req+"\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if enc := resp.Header.Get("Content-Encoding"); enc == "gzip" || enc == "zstd" {
		body = decode(t, enc, body)
	}
	return resp.StatusCode, string(body)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return string(bytes.ToValidUTF8([]byte(line), []byte("?")))
}
