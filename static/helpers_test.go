package static_test

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/static"
)

// testdata/site holds the test site. app.3f9a1c2b.js has real .br
// (brotli 11), .zst (zstd -19) and .gz (gzip -9) variants; style.css and
// data.json have none (on-the-fly candidates); tiny.txt is below the
// on-the-fly minimum; logo.png is never compressed; empty/ has no index;
// .env and .hidden/ must never be served. "all:" embeds the dotfiles too,
// so that the embed.FS tests see them.
//
//go:embed all:testdata/site
var siteEmbed embed.FS

// siteFS returns the embedded site rooted at its directory (fs.Sub, as
// applications mount their embedded assets).
func siteFS(t testing.TB) fs.FS {
	t.Helper()
	sub, err := fs.Sub(siteEmbed, "testdata/site")
	require.NoError(t, err)
	return sub
}

// siteDir copies testdata/site into a temporary directory (so that tests
// may change it) and returns its path.
func siteDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, siteFS(t)))
	return dir
}

// fileSystems are the two kinds of file system every behaviour test runs
// against.
func fileSystems(t *testing.T) map[string]func(t *testing.T) fs.FS {
	return map[string]func(t *testing.T) fs.FS{
		"embed": func(t *testing.T) fs.FS { return siteFS(t) },
		"dir": func(t *testing.T) fs.FS {
			d, err := static.Dir(siteDir(t))
			require.NoError(t, err)
			return d
		},
	}
}

func newServer(t testing.TB, fsys fs.FS, opts ...static.Option) *static.Server {
	t.Helper()
	s, err := static.New(fsys, opts...)
	require.NoError(t, err)
	return s
}

// do sends one request to h and returns the recorded response.
func do(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func readSite(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(siteFS(t), name)
	require.NoError(t, err)
	return b
}

// decode undoes a Content-Encoding the tests can decode (gzip, zstd).
func decode(t testing.TB, enc string, body []byte) []byte {
	t.Helper()
	switch enc {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err, "gzip body")
		out, err := io.ReadAll(zr)
		require.NoError(t, err, "gzip body")
		return out
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		require.NoError(t, err, "zstd body")
		defer zr.Close()
		out, err := io.ReadAll(zr)
		require.NoError(t, err, "zstd body")
		return out
	}
	t.Fatalf("cannot decode %q", enc)
	return nil
}

func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, data, 0o644))
}
