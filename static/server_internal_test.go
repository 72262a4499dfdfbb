package static

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/problem"
)

// fakeClock is the Server's clock in tests that cross the revalidation
// window without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestServer(t *testing.T, fsys fs.FS, opts ...Option) (*Server, *fakeClock) {
	t.Helper()
	s, err := New(fsys, opts...)
	require.NoError(t, err)
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.now = clock.now
	return s, clock
}

func get(h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// write writes name under dir with an explicit modification time, so that
// two writes within one clock tick still differ.
func write(t *testing.T, dir, name, data string, mtime time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	require.NoError(t, os.Chtimes(p, mtime, mtime))
}

func gz(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = io.WriteString(zw, s)
	require.NoError(t, zw.Close())
	return b.String()
}

func TestDirEditsArePickedUp(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	v1 := strings.Repeat("version one. ", 200)
	v2 := strings.Repeat("version two! ", 200) // same size, new content and time
	write(t, dir, "a.txt", v1, t0)
	fsys, err := Dir(dir)
	require.NoError(t, err)
	s, clock := newTestServer(t, fsys)

	first := get(s, "/a.txt")
	require.Equal(t, v1, first.Body.String())
	etag1 := first.Header().Get("Etag")

	write(t, dir, "a.txt", v2, t0.Add(time.Second))
	within := get(s, "/a.txt")
	assert.Equal(t, v1, within.Body.String(), "within the revalidation window the cached file is sent")
	assert.Equal(t, etag1, within.Header().Get("Etag"))

	clock.advance(defaultRevalidate)
	after := get(s, "/a.txt")
	assert.Equal(t, v2, after.Body.String(), "after the window the edit is seen")
	etag2 := after.Header().Get("Etag")
	assert.NotEqual(t, etag1, etag2, "a new content hash")
	assert.Equal(t, http.StatusNotModified, get(s, "/a.txt", "If-None-Match", etag2).Code)
	assert.Equal(t, http.StatusOK, get(s, "/a.txt", "If-None-Match", etag1).Code, "the old ETag no longer matches")

	// A variant that appears later is found at the next check.
	write(t, dir, "a.txt.gz", gz(t, v2), t0.Add(time.Second))
	otf := get(s, "/a.txt", "Accept-Encoding", "gzip")
	assert.True(t, strings.HasPrefix(otf.Header().Get("Etag"), "W/"), "before the check: on the fly")
	clock.advance(defaultRevalidate)
	pre := get(s, "/a.txt", "Accept-Encoding", "gzip")
	assert.Equal(t, gz(t, v2), pre.Body.String(), "after the check: the .gz file")
	assert.True(t, strings.HasSuffix(pre.Header().Get("Etag"), `-gz"`), "ETag %s", pre.Header().Get("Etag"))

	// Removed: 404 once checked.
	require.NoError(t, os.Remove(filepath.Join(dir, "a.txt")))
	require.NoError(t, os.Remove(filepath.Join(dir, "a.txt.gz")))
	clock.advance(defaultRevalidate)
	assert.Equal(t, http.StatusNotFound, get(s, "/a.txt").Code)

	// Replaced by a directory: redirect.
	write(t, dir, "a.txt/index.html", "<p>dir</p>", t0)
	clock.advance(defaultRevalidate)
	rec := get(s, "/a.txt")
	assert.Equal(t, http.StatusMovedPermanently, rec.Code)
	assert.Equal(t, "a.txt/", rec.Header().Get("Location"))
}

// callCountingFS counts the calls into a file system with links (as
// Dir's is).
type callCountingFS struct {
	fsys  fs.FS
	calls atomic.Int64
}

func (c *callCountingFS) Open(name string) (fs.File, error) {
	c.calls.Add(1)
	return c.fsys.Open(name)
}

func (c *callCountingFS) Stat(name string) (fs.FileInfo, error) {
	c.calls.Add(1)
	return fs.Stat(c.fsys, name)
}

func (c *callCountingFS) Lstat(name string) (fs.FileInfo, error) {
	c.calls.Add(1)
	return fs.Lstat(c.fsys, name)
}

func (c *callCountingFS) ReadLink(name string) (string, error) {
	c.calls.Add(1)
	return fs.ReadLink(c.fsys, name)
}

func TestCachedRequestsCostNoFileSystemCall(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	write(t, dir, "a.txt", "small", t0)
	write(t, dir, "a.txt.gz", gz(t, "small"), t0)
	write(t, dir, "docs/index.html", "<p>docs</p>", t0)
	d, err := Dir(dir)
	require.NoError(t, err)
	fsys := &callCountingFS{fsys: d}
	s, clock := newTestServer(t, fsys)
	requests := []struct {
		target, ae string
		status     int
	}{
		{"/a.txt", "", http.StatusOK},
		{"/a.txt", "gzip", http.StatusOK},
		{"/docs", "", http.StatusMovedPermanently},
		{"/docs/", "", http.StatusOK},
	}
	send := func() {
		t.Helper()
		for _, r := range requests {
			require.Equal(t, r.status, get(s, r.target, "Accept-Encoding", r.ae).Code, "GET %s (Accept-Encoding %q)", r.target, r.ae)
		}
	}
	send() // cache them
	before := fsys.calls.Load()
	send()
	assert.Equal(t, before, fsys.calls.Load(), "file system calls within the revalidation window")
	clock.advance(defaultRevalidate)
	send()
	assert.Greater(t, fsys.calls.Load(), before, "after the window, everything is checked again")
}

func TestDirLargeFileEditsAreSeenAtOnce(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	write(t, dir, "big.bin", strings.Repeat("a", 4096), t0)
	fsys, err := Dir(dir)
	require.NoError(t, err)
	s, _ := newTestServer(t, fsys)
	s.cache.maxMemFile = 1024 // big.bin is sent from disk

	assert.Equal(t, strings.Repeat("a", 4096), get(s, "/big.bin").Body.String())
	write(t, dir, "big.bin", strings.Repeat("b", 5000), t0.Add(time.Second))
	rec := get(s, "/big.bin")
	assert.Equal(t, strings.Repeat("b", 5000), rec.Body.String(), "files on disk are checked with fstat on every open")
	assert.Equal(t, "5000", rec.Header().Get("Content-Length"))
}

func TestCacheBounds(t *testing.T) {
	m := fstest.MapFS{}
	for i := range 10 {
		m[fmt.Sprintf("f%d.txt", i)] = &fstest.MapFile{Data: bytes.Repeat([]byte{'a' + byte(i)}, 1000)}
	}
	s, _ := newTestServer(t, m)
	s.cache.maxEntries = 4
	s.cache.maxMemTotal = 2500 // two files in memory

	for round := range 2 {
		for i := range 10 {
			rec := get(s, fmt.Sprintf("/f%d.txt", i))
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, bytes.Repeat([]byte{'a' + byte(i)}, 1000), rec.Body.Bytes(), "round %d file %d", round, i)
		}
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	assert.LessOrEqual(t, len(s.cache.entries), 4, "entries are bounded")
	var mem int64
	for _, e := range s.cache.entries {
		mem += e.mem
	}
	assert.Equal(t, mem, s.cache.mem.Load(), "memory accounting matches the entries kept")
	assert.LessOrEqual(t, s.cache.mem.Load(), int64(2500), "memory is bounded")
}

func TestMissesDoNotEvict(t *testing.T) {
	m := fstest.MapFS{}
	for i := range 4 {
		m[fmt.Sprintf("f%d.txt", i)] = &fstest.MapFile{Data: []byte("kept")}
	}
	s, _ := newTestServer(t, m, WithSPAFallback("f0.txt"))
	s.cache.maxEntries = 4 // full once the four files are cached

	for i := range 4 {
		require.Equal(t, http.StatusOK, get(s, fmt.Sprintf("/f%d.txt", i)).Code)
	}
	for i := range 20 {
		require.Equal(t, http.StatusNotFound, get(s, fmt.Sprintf("/missing%d.js", i)).Code)
		require.Equal(t, http.StatusOK, get(s, fmt.Sprintf("/route%d", i)).Code, "SPA fallback")
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	for i := range 4 {
		name := fmt.Sprintf("f%d.txt", i)
		assert.Contains(t, s.cache.entries, name, "%s evicted by requests for missing names", name)
	}
	assert.Len(t, s.cache.entries, 4, "failed lookups are not kept")
}

func TestConcurrentFirstRequestsBuildOnce(t *testing.T) {
	m := fstest.MapFS{"a.css": {Data: bytes.Repeat([]byte("a{} "), 1000)}}
	opensFor := func(requests int) int64 {
		var opens atomic.Int64
		s, _ := newTestServer(t, countingFS{FS: m, opens: &opens})
		var wg sync.WaitGroup
		for range requests {
			wg.Go(func() {
				rec := get(s, "/a.css", "Accept-Encoding", "gzip")
				assert.Equal(t, http.StatusOK, rec.Code)
			})
		}
		wg.Wait()
		return opens.Load()
	}
	one := opensFor(1)
	require.Positive(t, one)
	assert.Equal(t, one, opensFor(16), "16 concurrent first requests open a.css as often as one does")
}

type countingFS struct {
	fs.FS
	opens *atomic.Int64
}

func (c countingFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err == nil && name == "a.css" {
		c.opens.Add(1)
	}
	return f, err
}

// errFS fails every call with err, except for its root directory (New
// checks that there is one).
type errFS struct{ err error }

func (e errFS) Open(name string) (fs.File, error) {
	if name == "." {
		return fstest.MapFS{}.Open(name)
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: e.err}
}

func TestFileSystemErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		logged bool
	}{
		{"out of file descriptors", syscall.EMFILE, http.StatusInternalServerError, true},
		{"I/O error", syscall.EIO, http.StatusInternalServerError, true},
		{"missing", fs.ErrNotExist, http.StatusNotFound, false},
		{"permission", fs.ErrPermission, http.StatusNotFound, false},
		{"symlink escape", fmt.Errorf("path escapes from parent"), http.StatusNotFound, false},
		{"not a directory", syscall.ENOTDIR, http.StatusNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, _ := newTestServer(t, errFS{tt.err}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			rec := get(s, "/a.js")
			assert.Equal(t, tt.status, rec.Code)
			assert.NotContains(t, rec.Body.String(), tt.err.Error(), "no internal error text for the client")
			assert.Equal(t, tt.logged, strings.Contains(logs.String(), tt.err.Error()), "logged: %s", logs.String())
		})
	}
}

// changingFS reports a new modification time on every Stat of an opened
// file, as a file being rewritten all the time would. It counts opens.
type changingFS struct {
	fstest.MapFS
	n, opens *atomic.Int64
}

func (c changingFS) Open(name string) (fs.File, error) {
	f, err := c.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	c.opens.Add(1)
	return changingFile{f, c.n}, nil
}

type changingFile struct {
	fs.File
	n *atomic.Int64
}

func (f changingFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil || fi.IsDir() {
		return fi, err
	}
	return changingInfo{fi, time.Unix(f.n.Add(1), 0)}, nil
}

type changingInfo struct {
	fs.FileInfo
	t time.Time
}

func (i changingInfo) ModTime() time.Time { return i.t }

func TestFileThatNeverSettles(t *testing.T) {
	fsys := changingFS{fstest.MapFS{"log.txt": {Data: []byte("growing")}}, new(atomic.Int64), new(atomic.Int64)}
	s, _ := newTestServer(t, fsys)
	rec := get(s, "/log.txt")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Equal(t, int64(maxAttempts), fsys.opens.Load(), "one read per attempt, and no retries below the top")
}

// settlingFS is a changingFS for the first changes[name] opens of name
// only: a file written in place that then settles.
type settlingFS struct {
	fstest.MapFS
	changes map[string]int64
	opens   map[string]*atomic.Int64
	n       *atomic.Int64
}

func (c settlingFS) Open(name string) (fs.File, error) {
	f, err := c.MapFS.Open(name)
	if err != nil || c.opens[name] == nil {
		return f, err
	}
	if c.opens[name].Add(1) <= c.changes[name] {
		return changingFile{f, c.n}, nil
	}
	return f, nil
}

// TestFileThatSettles: a file, or a variant, that changes while it is
// read is read again, from the top of the request, until it settles
// within maxAttempts.
func TestFileThatSettles(t *testing.T) {
	css := bytes.Repeat([]byte("a{} "), 500)
	tests := []struct {
		name     string
		changes  map[string]int64
		encoding string // Content-Encoding of the answer to Accept-Encoding: gzip
		opens    map[string]int64
	}{
		{"file changes under one attempt", map[string]int64{"a.css": 1}, "gzip", map[string]int64{"a.css": 2, "a.css.gz": 1}},
		{"file changes under two attempts", map[string]int64{"a.css": 2}, "gzip", map[string]int64{"a.css": 3, "a.css.gz": 1}},
		{"variant changes under one attempt", map[string]int64{"a.css.gz": 1}, "gzip", map[string]int64{"a.css": 2, "a.css.gz": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := settlingFS{
				MapFS:   fstest.MapFS{"a.css": {Data: css}, "a.css.gz": {Data: []byte(gz(t, string(css)))}},
				changes: tt.changes,
				opens:   map[string]*atomic.Int64{"a.css": new(atomic.Int64), "a.css.gz": new(atomic.Int64)},
				n:       new(atomic.Int64),
			}
			s, _ := newTestServer(t, fsys)
			rec := get(s, "/a.css", "Accept-Encoding", "gzip")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, tt.encoding, rec.Header().Get("Content-Encoding"), "the precompressed variant is offered")
			assert.Equal(t, gz(t, string(css)), rec.Body.String())
			for name, want := range tt.opens {
				assert.Equal(t, want, fsys.opens[name].Load(), "opens of %s", name)
			}
		})
	}
}

// noSeekFS hides Seek from its files.
type noSeekFS struct{ fstest.MapFS }

func (n noSeekFS) Open(name string) (fs.File, error) {
	f, err := n.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return struct{ fs.File }{f}, nil
}

func TestNonSeekableFiles(t *testing.T) {
	s, _ := newTestServer(t, noSeekFS{fstest.MapFS{
		"small.txt": {Data: []byte("small")},
		"big.txt":   {Data: bytes.Repeat([]byte("b"), 2048)},
	}}, WithLogger(slog.New(slog.DiscardHandler)))
	s.cache.maxMemFile = 1024
	assert.Equal(t, "sm", get(s, "/small.txt", "Range", "bytes=0-1").Body.String(), "in memory: fine")
	assert.Equal(t, http.StatusInternalServerError, get(s, "/big.txt").Code, "ranges need io.Seeker")
}

func TestRevalidateZeroChecksEveryRequest(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	write(t, dir, "a.txt", "one", t0)
	fsys, err := Dir(dir)
	require.NoError(t, err)
	s, _ := newTestServer(t, fsys, WithRevalidate(0))
	assert.Equal(t, "one", get(s, "/a.txt").Body.String())
	write(t, dir, "a.txt", "two", t0.Add(time.Second))
	assert.Equal(t, "two", get(s, "/a.txt").Body.String(), "seen without waiting")
	write(t, dir, "a.txt.gz", gz(t, "two"), t0)
	assert.Equal(t, "gzip", get(s, "/a.txt", "Accept-Encoding", "gzip").Header().Get("Content-Encoding"), "a new variant too")
}

// TestProblemWriter checks that every error response the Server writes
// itself goes through WithProblemWriter, with the headers it set before
// (Allow, Retry-After, Vary) still on the response, and that WithNotFound
// still takes the 404s.
func TestProblemWriter(t *testing.T) {
	site := fstest.MapFS{
		"logo.png": {Data: []byte("\x89PNG not really")},
		"app.js":   {Data: bytes.Repeat([]byte("x"), 2000)},
		"log.txt":  {Data: []byte("growing")},
	}
	changing := changingFS{site, new(atomic.Int64), new(atomic.Int64)}
	tests := []struct {
		name   string
		fsys   fs.FS
		method string
		target string
		header []string
		status int
		keep   map[string]string // headers set before the Writer ran
	}{
		{"404", site, http.MethodGet, "/missing.js", nil, http.StatusNotFound, nil},
		{"404 for a hidden path", site, http.MethodGet, "/.env", nil, http.StatusNotFound, nil},
		{"405", site, http.MethodPost, "/app.js", nil, http.StatusMethodNotAllowed, map[string]string{"Allow": "GET, HEAD"}},
		{"406", site, http.MethodGet, "/app.js", []string{"Accept-Encoding", "br;q=1, identity;q=0"}, http.StatusNotAcceptable, map[string]string{"Vary": "Accept-Encoding"}},
		{"500", errFS{syscall.EIO}, http.MethodGet, "/app.js", nil, http.StatusInternalServerError, nil},
		{"503", changing, http.MethodGet, "/log.txt", nil, http.StatusServiceUnavailable, map[string]string{"Retry-After": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []problem.Details
			pw := func(w http.ResponseWriter, r *http.Request, d problem.Details) {
				got = append(got, d)
				w.Header().Set("Content-Type", "application/vnd.example+json")
				w.WriteHeader(d.Status)
				_, _ = fmt.Fprintf(w, `{"code":%d}`, d.Status)
			}
			s, _ := newTestServer(t, tt.fsys, WithProblemWriter(pw), WithLogger(slog.New(slog.DiscardHandler)))
			req := httptest.NewRequest(tt.method, tt.target, nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			require.Equal(t, tt.status, rec.Code)
			require.Len(t, got, 1, "the Writer ran once")
			assert.Equal(t, tt.status, got[0].Status, "Details.Status")
			assert.Equal(t, fmt.Sprintf(`{"code":%d}`, tt.status), rec.Body.String(), "the Writer's body")
			assert.Equal(t, "application/vnd.example+json", rec.Header().Get("Content-Type"))
			for k, v := range tt.keep {
				assert.Equal(t, v, rec.Header().Get(k), "header %s set before the Writer", k)
			}
		})
	}
	t.Run("WithNotFound takes the 404s", func(t *testing.T) {
		called := false
		pw := func(w http.ResponseWriter, r *http.Request, d problem.Details) { called = true }
		s, _ := newTestServer(t, site, WithProblemWriter(pw), WithNotFound(http.NotFoundHandler()))
		assert.Equal(t, http.StatusNotFound, get(s, "/missing.js").Code)
		assert.False(t, called, "the Writer is not asked for a 404 when WithNotFound is set")
	})
}

// TestLogger checks what the Server logs, and where: the 500 of a file
// system error and the 503 of a file that never settles, with the request
// path, through WithLogger's logger, or slog.Default() as it is when the
// record is made.
func TestLogger(t *testing.T) {
	settling := func() fs.FS {
		return changingFS{fstest.MapFS{"log.txt": {Data: []byte("growing")}}, new(atomic.Int64), new(atomic.Int64)}
	}
	tests := []struct {
		name   string
		fsys   fs.FS
		target string
		status int
		msg    string
		err    string
	}{
		{"500", errFS{syscall.EIO}, "/a.js", http.StatusInternalServerError, "static: file system error", "input/output error"},
		{"503", settling(), "/log.txt", http.StatusServiceUnavailable, "static: file kept changing while being served", "static: file changed while being served"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/WithLogger", func(t *testing.T) {
			var logs bytes.Buffer
			s, _ := newTestServer(t, tt.fsys, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			require.Equal(t, tt.status, get(s, tt.target).Code)
			assertLogged(t, logs.Bytes(), tt.msg, tt.target, tt.err)
		})
		t.Run(tt.name+"/slog.Default at the time of the record", func(t *testing.T) {
			s, _ := newTestServer(t, tt.fsys)
			var logs bytes.Buffer
			defer slog.SetDefault(slog.Default())
			slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil))) // after New
			require.Equal(t, tt.status, get(s, tt.target).Code)
			assertLogged(t, logs.Bytes(), tt.msg, tt.target, tt.err)
		})
	}
	t.Run("404 is not logged", func(t *testing.T) {
		var logs bytes.Buffer
		s, _ := newTestServer(t, errFS{fs.ErrNotExist}, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		require.Equal(t, http.StatusNotFound, get(s, "/a.js").Code)
		assert.Empty(t, logs.String())
	})
}

func assertLogged(t *testing.T, logs []byte, msg, path, errText string) {
	t.Helper()
	var rec struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Path  string `json:"url.path"`
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(logs, &rec), "one JSON record: %s", logs)
	assert.Equal(t, "ERROR", rec.Level, "level")
	assert.Equal(t, msg, rec.Msg, "message")
	assert.Equal(t, path, rec.Path, "url.path")
	assert.Contains(t, rec.Error, errText, "error")
}
