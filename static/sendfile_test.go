package static_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/testenv"
	"github.com/shipshape-go/shipshape/static"
)

// readFromRecorder is a ResponseRecorder that, like net/http's response,
// implements io.ReaderFrom, and records what it was given: sendfile only
// happens when the copy reaches it with an *os.File.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	sources []string
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", src)
	if lr, ok := src.(*io.LimitedReader); ok {
		desc += fmt.Sprintf("(%T)", lr.R)
	}
	r.sources = append(r.sources, desc)
	return io.Copy(struct{ io.Writer }{r.ResponseRecorder}, src)
}

// bigSite writes a file larger than the in-memory limit (so it is sent
// from disk), with a .gz variant also larger than it.
func bigSite(t testing.TB) (dir string, big, bigGz []byte) {
	t.Helper()
	dir = t.TempDir()
	big = fakeJS(1 << 20)
	bigGz = bytes.Repeat([]byte{0x1f, 0x8b, 0, 0}, 64<<10) // opaque "gzip" bytes, 256 KiB
	writeFile(t, dir, "big.js", big)
	writeFile(t, dir, "big.js.gz", bigGz)
	writeFile(t, dir, "photo.jpg", big)
	return dir, big, bigGz
}

func TestLargeFilesReachReaderFromWithTheFile(t *testing.T) {
	dir, big, bigGz := bigSite(t)
	fsys, err := static.Dir(dir)
	require.NoError(t, err)
	s := newServer(t, fsys)
	const fromFile = "*io.LimitedReader(*os.File)"
	tests := []struct {
		name   string
		target string
		header []string
		want   []byte
		source string // "" when ReadFrom must not see the file
	}{
		{"identity", "/photo.jpg", nil, big, fromFile},
		{"identity of a compressible file", "/big.js", nil, big, fromFile},
		{"precompressed variant", "/big.js", []string{"Accept-Encoding", "gzip"}, bigGz, fromFile},
		{"conditional request (ServeContent)", "/photo.jpg", []string{"If-None-Match", `"old"`}, big, fromFile},
		{"single range", "/photo.jpg", []string{"Range", "bytes=100-199999"}, big[100:200000], fromFile},
		{"range of the variant", "/big.js", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-99"}, bigGz[:100], fromFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			s.ServeHTTP(rec, req)
			require.Contains(t, []int{200, 206}, rec.Code)
			assert.Equal(t, tt.want, rec.Body.Bytes(), "body")
			assert.Equal(t, []string{tt.source}, rec.sources, "what io.ReaderFrom was given")
		})
	}
	t.Run("on-the-fly compression does not use it", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/big.js", nil)
		req.Header.Set("Accept-Encoding", "zstd")
		rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
		s.ServeHTTP(rec, req)
		assert.Equal(t, "zstd", rec.Header().Get("Content-Encoding"))
		assert.Equal(t, big, decode(t, "zstd", rec.Body.Bytes()))
		assert.Empty(t, rec.sources, "compressed bytes are written, not sent from the file")
	})
}

var sendfileCall = regexp.MustCompile(`sendfile(?:64)?\(\d+, \d+, [^)]*\)\s+= (\d+)`)

// TestSendfileSyscall runs a real loopback server in a child process
// under strace and counts the bytes the kernel sent with sendfile(2) for
// a 1 MiB file: all but the first 512 (net/http writes those itself to
// sniff) must go that way, for a full response and for a range.
func TestSendfileSyscall(t *testing.T) {
	if os.Getenv("STATIC_SENDFILE_CHILD") != "" {
		t.Skip("in the child")
	}
	if runtime.GOOS != "linux" {
		t.Skip("strace is Linux only")
	}
	strace := testenv.LookPath(t, "strace", "strace")
	dir, _, _ := bigSite(t)
	out := filepath.Join(t.TempDir(), "strace.out")
	cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=sendfile,sendfile64", "-o", out,
		os.Args[0], "-test.run", "^TestSendfileChild$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), "STATIC_SENDFILE_CHILD="+dir)
	child, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(child), "Operation not permitted") {
		t.Skipf("strace cannot trace here (ptrace not permitted): %s", child)
	}
	require.NoError(t, err, "child:\n%s", child)
	require.Contains(t, string(child), "--- PASS: TestSendfileChild", "child:\n%s", child)
	trace, err := os.ReadFile(out)
	require.NoError(t, err)
	var sent int64
	for _, m := range sendfileCall.FindAllStringSubmatch(string(trace), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		sent += n
	}
	// 1 MiB full response plus a 200000-byte range, minus the sniffed
	// first 512 bytes of each.
	want := int64(1<<20-512) + int64(200000-512)
	assert.Equal(t, want, sent, "bytes sent with sendfile; trace:\n%s", firstLines(string(trace), 20))
}

// TestSendfileChild is the server side of TestSendfileSyscall; it only
// runs in the child process.
func TestSendfileChild(t *testing.T) {
	dir := os.Getenv("STATIC_SENDFILE_CHILD")
	if dir == "" {
		t.Skip("run by TestSendfileSyscall")
	}
	fsys, err := static.Dir(dir)
	require.NoError(t, err)
	ts := httptest.NewServer(newServer(t, fsys))
	defer ts.Close()
	big, err := os.ReadFile(filepath.Join(dir, "photo.jpg"))
	require.NoError(t, err)
	for _, rng := range []string{"", "bytes=0-199999"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/photo.jpg", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		if rng == "" {
			require.Equal(t, big, body)
		} else {
			require.Equal(t, big[:200000], body)
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
