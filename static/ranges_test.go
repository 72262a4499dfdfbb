package static_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/static"
)

// oneByteRanges is a Range value of n one-byte ranges at even offsets
// ("bytes=0-0,2-2,4-4,…"), the shape of a range amplification attack.
func oneByteRanges(n int) string {
	var b strings.Builder
	b.WriteString("bytes=")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		off := strconv.Itoa(2 * i)
		b.WriteString(off + "-" + off)
	}
	return b.String()
}

// rangeSite writes a file kept in memory and one sent from disk, with
// content that tells every offset apart.
func rangeSite(t *testing.T) (dir string, files map[string][]byte) {
	t.Helper()
	dir = t.TempDir()
	files = map[string][]byte{
		"/small.bin": fakeJS(60000),
		"/big.bin":   fakeJS(1 << 20),
	}
	for name, data := range files {
		writeFile(t, dir, name, data)
	}
	return dir, files
}

// response is what a real client got.
type response struct {
	status int
	header http.Header
	body   []byte
}

func fetch(t *testing.T, ts *httptest.Server, method, target string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+target, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, body}
}

// parts returns the parts of a multipart/byteranges response.
func parts(t *testing.T, r response) [][]byte {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/byteranges", mt)
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	var out [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p)
		require.NoError(t, err)
		out = append(out, b)
	}
}

// TestRangeLimits sends real requests with many, or overlapping, ranges:
// past 16 ranges, or when the ranges add up to more than the file, the
// whole file is sent with 200 (as nginx's max_ranges does), instead of a
// multipart response many times the file's size that costs about 100 ms
// of CPU to build.
func TestRangeLimits(t *testing.T) {
	dir, files := rangeSite(t)
	fsys, err := static.Dir(dir)
	require.NoError(t, err)
	ts := httptest.NewServer(newServer(t, fsys))
	defer ts.Close()
	tests := []struct {
		name   string
		method string
		header []string
		parts  int // 0: 200 with the whole file; 1: a single range; more: multipart
	}{
		{"6222 one-byte ranges", http.MethodGet, []string{"Range", oneByteRanges(6222)}, 0},
		{"6222 one-byte ranges, HEAD", http.MethodHead, []string{"Range", oneByteRanges(6222)}, 0},
		{"17 ranges, over the cap", http.MethodGet, []string{"Range", oneByteRanges(17)}, 0},
		{"17 ranges, HEAD", http.MethodHead, []string{"Range", oneByteRanges(17)}, 0},
		{"16 ranges, at the cap", http.MethodGet, []string{"Range", oneByteRanges(16)}, 16},
		{"16 ranges, HEAD", http.MethodHead, []string{"Range", oneByteRanges(16)}, 16},
		{"empty list elements are not ranges", http.MethodGet, []string{"Range", "bytes=0-0" + strings.Repeat(", ", 40) + ",2-2"}, 2},
		{"overlapping ranges adding up to more than the file", http.MethodGet, []string{"Range", "bytes=0-,0-"}, 0},
		{"overlapping ranges, HEAD", http.MethodHead, []string{"Range", "bytes=0-,0-"}, 0},
		{"overlapping ranges one byte over the file", http.MethodGet, []string{"Range", "bytes=1-,0-1"}, 0},
		{"over the cap with If-Range", http.MethodGet, []string{"Range", oneByteRanges(17), "If-Range", "{ETAG}"}, 0},
		{"at the cap with If-Range", http.MethodGet, []string{"Range", oneByteRanges(16), "If-Range", "{ETAG}"}, 16},
		{"a single range", http.MethodGet, []string{"Range", "bytes=10-19"}, 1},
	}
	for target, data := range files {
		etag := fetch(t, ts, http.MethodHead, target).header.Get("Etag")
		require.NotEmpty(t, etag)
		for _, tt := range tests {
			t.Run(strings.TrimPrefix(target, "/")+"/"+tt.name, func(t *testing.T) {
				header := append([]string(nil), tt.header...)
				for i := range header {
					if header[i] == "{ETAG}" {
						header[i] = etag
					}
				}
				r := fetch(t, ts, tt.method, target, header...)
				get := tt.method == http.MethodGet
				switch tt.parts {
				case 0:
					require.Equal(t, http.StatusOK, r.status, "the whole file, not ranges")
					assert.Equal(t, strconv.Itoa(len(data)), r.header.Get("Content-Length"))
					assert.Empty(t, r.header.Get("Content-Range"))
					if get {
						assert.Equal(t, len(data), len(r.body), "body size")
						assert.True(t, bytes.Equal(data, r.body), "body is the file")
					}
				case 1:
					require.Equal(t, http.StatusPartialContent, r.status)
					assert.Equal(t, data[10:20], r.body)
				default:
					require.Equal(t, http.StatusPartialContent, r.status)
					if get {
						got := parts(t, r)
						require.Len(t, got, tt.parts)
						for i, p := range got {
							assert.Equal(t, data[2*i:2*i+1], p, "part %d", i)
						}
					}
				}
				if !get {
					assert.Empty(t, r.body, "HEAD")
				}
			})
		}
	}
}

func TestWithMaxRanges(t *testing.T) {
	body := readSite(t, "app.3f9a1c2b.js")
	gzBody := readSite(t, "app.3f9a1c2b.js.gz")
	tests := []struct {
		name         string
		opts         []static.Option
		method       string
		header       []string
		status       int
		want         []byte // body of a 200 or a single-range 206 (nil for HEAD or multipart)
		acceptRanges string
	}{
		{"default: a plain GET says bytes", nil, http.MethodGet, nil, 200, body, "bytes"},
		{"cap 2: two ranges", []static.Option{static.WithMaxRanges(2)}, http.MethodGet, []string{"Range", oneByteRanges(2)}, 206, nil, "bytes"},
		{"cap 2: three ranges", []static.Option{static.WithMaxRanges(2)}, http.MethodGet, []string{"Range", oneByteRanges(3)}, 200, body, "bytes"},
		{"cap 1: one range", []static.Option{static.WithMaxRanges(1)}, http.MethodGet, []string{"Range", "bytes=0-9"}, 206, body[:10], "bytes"},
		{"off: a plain GET", []static.Option{static.WithMaxRanges(0)}, http.MethodGet, nil, 200, body, "none"},
		{"off: a single range", []static.Option{static.WithMaxRanges(0)}, http.MethodGet, []string{"Range", "bytes=0-9"}, 200, body, "none"},
		{"off: HEAD with a range", []static.Option{static.WithMaxRanges(0)}, http.MethodHead, []string{"Range", "bytes=0-9"}, 200, nil, "none"},
		{"off: a conditional GET", []static.Option{static.WithMaxRanges(0)}, http.MethodGet, []string{"If-None-Match", `"old"`}, 200, body, "none"},
		{"off: a range of a variant", []static.Option{static.WithMaxRanges(0)}, http.MethodGet, []string{"Accept-Encoding", "gzip", "Range", "bytes=0-9"}, 200, gzBody, "none"},
		{"off: a variant, plain", []static.Option{static.WithMaxRanges(0)}, http.MethodGet, []string{"Accept-Encoding", "gzip"}, 200, gzBody, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(newServer(t, siteFS(t), tt.opts...))
			defer ts.Close()
			// The client must not decode the gzip variant: ask for it
			// explicitly, or for identity.
			header := append([]string{"Accept-Encoding", "identity"}, tt.header...)
			r := fetch(t, ts, tt.method, js, header...)
			require.Equal(t, tt.status, r.status)
			assert.Equal(t, tt.acceptRanges, r.header.Get("Accept-Ranges"))
			if tt.want != nil {
				assert.Equal(t, tt.want, r.body)
			}
			if tt.method == http.MethodHead {
				assert.Equal(t, strconv.Itoa(len(body)), r.header.Get("Content-Length"))
			}
		})
	}
}

// countParts returns the number of parts of a multipart response, 0 for
// any other.
func countParts(t *testing.T, rec *httptest.ResponseRecorder) int {
	mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		return 0
	}
	mr := multipart.NewReader(bytes.NewReader(rec.Body.Bytes()), params["boundary"])
	n := 0
	for {
		if _, err := mr.NextPart(); err == io.EOF {
			return n
		} else if err != nil {
			t.Fatalf("malformed multipart response: %v", err)
		}
		n++
	}
}

// FuzzRangeHeader sends arbitrary Range values to a Server and to bare
// http.ServeContent over the same bytes. The Server never sends more than
// 16 parts, and a 200 always carries the whole file; a value listing more
// than 16 ranges gets 200, and one listing 16 or fewer gets the status
// ServeContent gives it: the count agrees with ServeContent's parser.
//
//	go test -run '^$' -fuzz FuzzRangeHeader -fuzztime 60s ./static
func FuzzRangeHeader(f *testing.F) {
	body := fakeJS(6000)
	s, err := static.New(fstest.MapFS{"a.js": {Data: body}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"bytes=0-0", "bytes=0-9,20-29", "bytes=-5", "bytes=0-", "bytes=0-,0-", "bytes=1-,0-1",
		oneByteRanges(16), oneByteRanges(17), oneByteRanges(100), "bytes=0-0,,,, ,\t,2-2",
		"bytes=", "bytes=,", "bytes=x", "bytes=9999999-", "items=0-1", "bytes = 0-1", " bytes=0-1",
		"bytes=0-0, 2-2 ,4-4", "bytes=5-1", "bytes=--1", "bytes=0-0\v,2-2", "bytes=0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
		"bytes=0-0" + strings.Repeat(",\r\n", 20) + ",2-2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rng string) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/a.js"}, Header: http.Header{"Range": {rng}}}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		ref := httptest.NewRecorder()
		http.ServeContent(ref, req, "a.js", time.Time{}, bytes.NewReader(body))

		if n := countParts(t, rec); n > 16 {
			t.Fatalf("Range %q: %d parts", rng, n)
		}
		if rec.Code == http.StatusOK && !bytes.Equal(rec.Body.Bytes(), body) {
			t.Fatalf("Range %q: 200 without the whole file", rng)
		}
		set, ok := strings.CutPrefix(strings.TrimSpace(rng), "bytes=")
		if !ok {
			return // an unknown unit is ignored, where ServeContent answers 416
		}
		// The ranges listed, as net/http's parseRange splits them.
		listed := 0
		for _, elem := range strings.Split(set, ",") {
			if textproto.TrimString(elem) != "" {
				listed++
			}
		}
		switch {
		case listed > 16 && rec.Code != http.StatusOK:
			t.Fatalf("Range %q: %d ranges, status %d", rng, listed, rec.Code)
		case listed <= 16 && rec.Code != ref.Code:
			t.Fatalf("Range %q: status %d, ServeContent %d", rng, rec.Code, ref.Code)
		}
	})
}
