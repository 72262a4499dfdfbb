package static_test

import (
	"io/fs"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/static"
)

// discardWriter is a minimal ResponseWriter: a fresh header map per
// request, as net/http gives, and the body thrown away.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkServeHTTP measures the handler alone (no network) for the
// main paths: a file from memory, a precompressed variant, a 304, a
// range, and on-the-fly compression.
//
//	go test -run '^$' -bench ServeHTTP -benchmem ./static
func BenchmarkServeHTTP(b *testing.B) {
	cases := []struct {
		name, target string
		header       []string
		status       int
	}{
		{"identity", "/app.3f9a1c2b.js", nil, 200},
		{"br variant", "/app.3f9a1c2b.js", []string{"Accept-Encoding", "gzip, deflate, br, zstd"}, 200},
		{"gzip variant", "/app.3f9a1c2b.js", []string{"Accept-Encoding", "gzip"}, 200},
		{"304", "/app.3f9a1c2b.js", []string{"Accept-Encoding", "gzip", "If-None-Match", "{ETAG}"}, 304},
		{"range", "/app.3f9a1c2b.js", []string{"Range", "bytes=0-99"}, 206},
		{"index", "/docs/", nil, 200},
		{"on-the-fly gzip 3KB", "/style.css", []string{"Accept-Encoding", "gzip"}, 200},
		{"on-the-fly zstd 3KB", "/style.css", []string{"Accept-Encoding", "zstd"}, 200},
		{"404", "/missing.js", nil, 404},
	}
	systems := map[string]fs.FS{"embed": siteFS(b)}
	d, err := static.Dir(siteDir(b))
	require.NoError(b, err)
	systems["dir"] = d
	for fsName, fsys := range systems {
		s := newServer(b, fsys)
		for _, c := range cases {
			b.Run(fsName+"/"+c.name, func(b *testing.B) {
				header := http.Header{}
				for i := 0; i+1 < len(c.header); i += 2 {
					v := c.header[i+1]
					if v == "{ETAG}" {
						v = do(s, http.MethodGet, c.target, "Accept-Encoding", "gzip").Header().Get("Etag")
					}
					header.Set(c.header[i], v)
				}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: c.target}, Header: header}
					w := &discardWriter{}
					for pb.Next() {
						w.h, w.code = http.Header{}, 0
						s.ServeHTTP(w, req)
						if w.code != c.status {
							b.Errorf("status %d, want %d", w.code, c.status)
							return
						}
					}
				})
			})
		}
	}
}
