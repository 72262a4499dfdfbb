package static_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/static"
)

// TestConditionalRequestsMatchNginx sends the same conditional and range
// requests to nginx and to static serving the same directory, and
// expects the same status codes (and Content-Range). ETag formats differ
// ("mtime-size" against a content hash), so each server is asked with
// the validators it gave itself: {ETAG} and {LM} are replaced by that
// server's ETag and Last-Modified.
//
// nginx runs with "if_modified_since before" (304 when the file is not
// newer than the date, as RFC 9110 and net/http do; nginx's default
// "exact" only matches the same second) and gzip_static on.
func TestConditionalRequestsMatchNginx(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, siteFS(t)))
	mtime := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	}))
	ng := testenv.StartNginx(t, "listen {{ADDR}};\nroot "+dir+";\netag on;\nif_modified_since before;\ngzip_static on;\n")
	fsys, err := static.Dir(dir)
	require.NoError(t, err)
	ts := httptest.NewServer(newServer(t, fsys))
	defer ts.Close()
	servers := map[string]string{"nginx": "http://" + ng.Addr, "static": ts.URL}

	lmMinus := mtime.Add(-time.Hour).Format(http.TimeFormat)
	lmPlus := mtime.Add(time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name   string
		method string
		ae     string
		header []string
		status int
		// mine is static's status where it differs from nginx on
		// purpose (0: the same as nginx).
		mine int
	}{
		{"plain", "GET", "", nil, 200, 0},
		{"If-None-Match own ETag", "GET", "", []string{"If-None-Match", "{ETAG}"}, 304, 0},
		{"If-None-Match other", "GET", "", []string{"If-None-Match", `"other"`}, 200, 0},
		{"If-None-Match list", "GET", "", []string{"If-None-Match", `"a", {ETAG}`}, 304, 0},
		{"If-None-Match weak form", "GET", "", []string{"If-None-Match", "W/{ETAG}"}, 304, 0},
		{"If-None-Match star", "GET", "", []string{"If-None-Match", "*"}, 304, 0},
		{"If-Modified-Since same", "GET", "", []string{"If-Modified-Since", "{LM}"}, 304, 0},
		{"If-Modified-Since later", "GET", "", []string{"If-Modified-Since", lmPlus}, 304, 0},
		{"If-Modified-Since earlier", "GET", "", []string{"If-Modified-Since", lmMinus}, 200, 0},
		{"If-Modified-Since garbage", "GET", "", []string{"If-Modified-Since", "yesterday"}, 200, 0},
		{"If-None-Match wins over If-Modified-Since", "GET", "", []string{"If-None-Match", `"other"`, "If-Modified-Since", "{LM}"}, 200, 0},
		{"If-Match own ETag", "GET", "", []string{"If-Match", "{ETAG}"}, 200, 0},
		{"If-Match other", "GET", "", []string{"If-Match", `"other"`}, 412, 0},
		{"If-Match star", "GET", "", []string{"If-Match", "*"}, 200, 0},
		{"If-Unmodified-Since earlier", "GET", "", []string{"If-Unmodified-Since", lmMinus}, 412, 0},
		{"If-Unmodified-Since same", "GET", "", []string{"If-Unmodified-Since", "{LM}"}, 200, 0},
		{"Range first bytes", "GET", "", []string{"Range", "bytes=0-9"}, 206, 0},
		{"Range suffix", "GET", "", []string{"Range", "bytes=-10"}, 206, 0},
		{"Range open end", "GET", "", []string{"Range", "bytes=100-"}, 206, 0},
		{"Range past the end is clipped", "GET", "", []string{"Range", "bytes=10-999999"}, 206, 0},
		{"Range multiple", "GET", "", []string{"Range", "bytes=0-4,10-14"}, 206, 0},
		{"Range unsatisfiable", "GET", "", []string{"Range", "bytes=999999-"}, 416, 0},
		{"Range reversed", "GET", "", []string{"Range", "bytes=9-5"}, 416, 0},
		{"Range unknown unit", "GET", "", []string{"Range", "items=0-9"}, 200, 0},
		{"If-Range own ETag", "GET", "", []string{"Range", "bytes=0-9", "If-Range", "{ETAG}"}, 206, 0},
		{"If-Range other ETag", "GET", "", []string{"Range", "bytes=0-9", "If-Range", `"other"`}, 200, 0},
		{"If-Range weak ETag never matches", "GET", "", []string{"Range", "bytes=0-9", "If-Range", "W/{ETAG}"}, 200, 0},
		{"If-Range date", "GET", "", []string{"Range", "bytes=0-9", "If-Range", "{LM}"}, 206, 0},
		{"If-Range older date", "GET", "", []string{"Range", "bytes=0-9", "If-Range", lmMinus}, 200, 0},
		{"Range and matching If-None-Match", "GET", "", []string{"Range", "bytes=0-9", "If-None-Match", "{ETAG}"}, 304, 0},
		{"HEAD", "HEAD", "", nil, 200, 0},
		{"HEAD If-None-Match", "HEAD", "", []string{"If-None-Match", "{ETAG}"}, 304, 0},
		{"HEAD Range", "HEAD", "", []string{"Range", "bytes=0-9"}, 206, 0},
		{"gzip variant", "GET", "gzip", nil, 200, 0},
		{"gzip If-None-Match own ETag", "GET", "gzip", []string{"If-None-Match", "{ETAG}"}, 304, 0},
		{"gzip If-Modified-Since", "GET", "gzip", []string{"If-Modified-Since", "{LM}"}, 304, 0},
		{"gzip If-None-Match other", "GET", "gzip", []string{"If-None-Match", `"other"`}, 200, 0},
		// nginx ignores Range for gzip_static responses; static serves
		// ranges of the .gz bytes (its ETag is strong and its own, so
		// a resumed download stays consistent).
		{"gzip Range", "GET", "gzip", []string{"Range", "bytes=0-9"}, 200, 206},
		{"gzip If-Range own ETag", "GET", "gzip", []string{"Range", "bytes=0-9", "If-Range", "{ETAG}"}, 200, 206},
		{"gzip If-Range other ETag", "GET", "gzip", []string{"Range", "bytes=0-9", "If-Range", `"other"`}, 200, 0},
	}
	const target = "/app.3f9a1c2b.js"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]*http.Response{}
			for name, base := range servers {
				// The validators this server gives for this encoding.
				plain := send(t, "GET", base+target, "Accept-Encoding", tt.ae)
				require.Equal(t, http.StatusOK, plain.StatusCode, "%s: plain GET", name)
				etag, lm := plain.Header.Get("Etag"), plain.Header.Get("Last-Modified")
				require.NotEmpty(t, etag, "%s: ETag", name)
				require.Equal(t, mtime.Format(http.TimeFormat), lm, "%s: Last-Modified", name)
				if tt.ae == "gzip" {
					require.Equal(t, "gzip", plain.Header.Get("Content-Encoding"), "%s: serves the .gz file", name)
				}
				header := []string{"Accept-Encoding", tt.ae}
				for _, v := range tt.header {
					v = strings.ReplaceAll(v, "W/{ETAG}", "W/"+strings.TrimPrefix(etag, "W/"))
					header = append(header, strings.NewReplacer("{ETAG}", etag, "{LM}", lm).Replace(v))
				}
				got[name] = send(t, tt.method, base+target, header...)
			}
			ngx, st := got["nginx"], got["static"]
			assert.Equal(t, tt.status, ngx.StatusCode, "nginx status")
			if tt.mine != 0 {
				assert.Equal(t, tt.mine, st.StatusCode, "static status (a known difference: nginx %d)", ngx.StatusCode)
				return
			}
			assert.Equal(t, ngx.StatusCode, st.StatusCode, "static status (nginx %d)", ngx.StatusCode)
			if ngx.StatusCode == 206 && !strings.Contains(tt.name, "multiple") {
				assert.Equal(t, ngx.Header.Get("Content-Range"), st.Header.Get("Content-Range"), "Content-Range")
			}
			if ngx.StatusCode == 416 && tt.name == "Range unsatisfiable" {
				// (For a reversed range net/http omits it; nginx sends
				// "bytes */size". Both are allowed for an invalid range.)
				assert.Equal(t, ngx.Header.Get("Content-Range"), st.Header.Get("Content-Range"), "Content-Range of a 416")
			}
		})
	}

	// Where static differs from nginx on purpose.
	t.Run("differences", func(t *testing.T) {
		for _, d := range []struct {
			target      string
			nginx, mine int
			why         string
		}{
			{"/.env", 200, 404, "nginx serves dotfiles unless told not to"},
			{"/empty/", 403, 404, "a directory without index is simply not found"},
		} {
			assert.Equal(t, d.nginx, send(t, "GET", servers["nginx"]+d.target).StatusCode, "nginx %s", d.target)
			assert.Equal(t, d.mine, send(t, "GET", servers["static"]+d.target).StatusCode, "static %s: %s", d.target, d.why)
		}
	})
}

// send makes one request without transparent decompression and returns
// the response with its body read.
func send(t *testing.T, method, u string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp
}
