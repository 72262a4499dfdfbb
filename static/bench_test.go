package static_test

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
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

// BenchmarkBareHandler is the floor for BenchmarkServeHTTP/*/gzip_variant:
// the same eight header fields and body, written from memory by a
// handler that knows the answer in advance.
func BenchmarkBareHandler(b *testing.B) {
	gz := readSite(b, "app.3f9a1c2b.js.gz")
	length := strconv.Itoa(len(gz))
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", static.CacheImmutable)
		h.Set("Etag", `"0123456789abcdefghijkl-gz"`)
		h.Set("Vary", "Accept-Encoding")
		h.Set("Last-Modified", "Fri, 01 Mar 2024 10:00:00 GMT")
		h.Set("Content-Length", length)
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(gz)
	})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/app.3f9a1c2b.js"}, Header: http.Header{"Accept-Encoding": {"gzip"}}}
		w := &discardWriter{}
		for pb.Next() {
			w.h, w.code = http.Header{}, 0
			bare.ServeHTTP(w, req)
		}
	})
}

// BenchmarkServeFromDisk measures the handler for a file sent from disk
// (over 64 KiB), which costs an open, an fstat and a close on every
// request: HEAD (the headers alone) and a 100-byte range (through
// http.ServeContent), so that the figure is not the cost of copying a
// large body.
//
//	go test -run '^$' -bench ServeFromDisk -benchmem ./static
func BenchmarkServeFromDisk(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, dir, "big.bin", bytes.Repeat([]byte("0123456789abcdef"), 1<<16))
	d, err := static.Dir(dir)
	require.NoError(b, err)
	systems := map[string]fs.FS{"dir": d, "os.DirFS": os.DirFS(dir)}
	cases := []struct {
		name, method string
		header       http.Header
		status       int
	}{
		{"HEAD", http.MethodHead, http.Header{}, 200},
		{"range", http.MethodGet, http.Header{"Range": {"bytes=0-99"}}, 206},
	}
	for fsName, fsys := range systems {
		s := newServer(b, fsys)
		for _, c := range cases {
			b.Run(fsName+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req := &http.Request{Method: c.method, URL: &url.URL{Path: "/big.bin"}, Header: c.header}
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

// BenchmarkManyRanges measures a request for 6222 one-byte ranges of a
// 60 KB file in memory, the shape of a range amplification attack, and
// reports the response's size (resp-B/op). With the default cap of 16
// ranges it is answered with the whole file.
//
//	go test -run '^$' -bench ManyRanges -benchmem ./static
func BenchmarkManyRanges(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, dir, "a.js", fakeJS(60000))
	d, err := static.Dir(dir)
	require.NoError(b, err)
	s := newServer(b, d)
	header := http.Header{"Range": {oneByteRanges(6222)}}
	var sent atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/a.js"}, Header: header}
		w := &countingWriter{}
		for pb.Next() {
			w.h, w.code = http.Header{}, 0
			s.ServeHTTP(w, req)
		}
		sent.Add(w.n)
	})
	b.ReportMetric(float64(sent.Load())/float64(b.N), "resp-B/op")
}

// countingWriter is a discardWriter that counts the body bytes.
type countingWriter struct {
	h    http.Header
	code int
	n    int64
}

func (w *countingWriter) Header() http.Header  { return w.h }
func (w *countingWriter) WriteHeader(code int) { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
