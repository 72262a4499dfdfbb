//go:build unix

package static

import (
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// swapIn replaces the file at path by something that is not a regular
// file.
type swapIn func(t *testing.T, path string)

// swapFIFO renames a FIFO over path: opening it for reading without
// O_NONBLOCK blocks until a writer shows up, which no client can make
// happen.
func swapFIFO(t *testing.T, path string) {
	tmp := path + ".new"
	require.NoError(t, syscall.Mkfifo(tmp, 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func swapDir(t *testing.T, path string) {
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o755))
}

// swapSocket renames a listening unix socket over path. The socket is
// bound in a directory of its own with a short name: socket paths are
// limited to about 100 bytes.
func swapSocket(t *testing.T, path string) {
	dir, err := os.MkdirTemp("", "sock")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	require.NoError(t, os.Rename(filepath.Join(dir, "s"), path))
}

// TestNonRegularFilesSwappedInAreAnswered swaps a FIFO, a directory and a
// socket in for a file that was served before, and checks that every
// later request is answered: for a file sent from disk (opened on every
// request, also within the revalidation window) and for one kept in
// memory (read again once the window is over), on Dir and on a file
// system Dir does not know (os.DirFS). A request stuck in open(2) on a
// FIFO never returns and holds an OS thread; enough of them exhaust the
// process's threads.
func TestNonRegularFilesSwappedInAreAnswered(t *testing.T) {
	kinds := []struct {
		name   string
		swap   swapIn
		status int // 404, or a redirect to the directory
	}{
		{"fifo", swapFIFO, http.StatusNotFound},
		{"directory", swapDir, http.StatusMovedPermanently},
		{"socket", swapSocket, http.StatusNotFound},
	}
	files := []struct {
		name       string
		size       int
		afterCheck bool // the requests come after the revalidation window
	}{
		{"sent from disk", defaultMaxMemFile + 1, false},
		{"kept in memory", 1000, true},
	}
	systems := []struct {
		name string
		open func(t *testing.T, dir string) fs.FS
	}{
		{"Dir", func(t *testing.T, dir string) fs.FS {
			fsys, err := Dir(dir)
			require.NoError(t, err)
			return fsys
		}},
		{"os.DirFS", func(_ *testing.T, dir string) fs.FS { return os.DirFS(dir) }},
	}
	for _, sys := range systems {
		for _, f := range files {
			for _, k := range kinds {
				t.Run(sys.name+"/"+f.name+"/"+k.name, func(t *testing.T) {
					dir := t.TempDir()
					path := filepath.Join(dir, "f.bin")
					require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("x", f.size)), 0o644))
					s, clock := newTestServer(t, sys.open(t, dir))
					require.Equal(t, http.StatusOK, get(s, "/f.bin").Code, "before the swap")

					k.swap(t, path)
					if f.afterCheck {
						// The request that makes the check sees the
						// swap; requests racing with it would still
						// get the copy in memory.
						clock.advance(defaultRevalidate)
						require.Equal(t, k.status, get(s, "/f.bin").Code, "the request that checks")
					}
					got := requestAll(t, s, "/f.bin", 20, path)
					assert.Equal(t, map[int]int{k.status: 20}, got, "statuses of 20 requests (0: not answered)")
				})
			}
		}
	}
}

// requestAll sends n concurrent requests for target to h and returns
// how many got each status, 0 counting the requests not answered within a generous
// deadline (its point is liveness: a request blocked in open on a FIFO
// never returns). Before returning, it releases such requests by opening
// the FIFO at fifo for writing, so that a failing run neither hangs nor
// leaks goroutines.
func requestAll(t *testing.T, h http.Handler, target string, n int, fifo string) map[int]int {
	t.Helper()
	done := make(chan int, n)
	for range n {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			done <- rec.Code
		}()
	}
	codes := map[int]int{}
	deadline := time.After(5 * time.Second)
	received := 0
wait:
	for received < n {
		select {
		case code := <-done:
			codes[code]++
			received++
		case <-deadline:
			break wait
		}
	}
	if received < n {
		codes[0] = n - received
	}
	for stuck := n - received; stuck > 0; {
		// A writer opening the FIFO wakes every reader blocked in open.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		} else if !errors.Is(err, syscall.ENXIO) {
			t.Logf("release blocked readers: %v", err)
		}
		select {
		case <-done:
			stuck--
		case <-time.After(10 * time.Millisecond):
		}
	}
	return codes
}

// TestDirOpensRegularFilesBlocking checks that the O_NONBLOCK a Dir opens
// with does not stay on a regular file: some file systems (FUSE, network
// ones) honour it, and a read or sendfile would then fail with EAGAIN.
func TestDirOpensRegularFilesBlocking(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644))
	fsys, err := Dir(dir)
	require.NoError(t, err)
	f, fi, err := fsys.(*dirFS).openRegular("a.txt")
	require.NoError(t, err)
	defer f.Close()
	assert.True(t, fi.Mode().IsRegular())
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	require.NoError(t, err)
	assert.Zero(t, flags&unix.O_NONBLOCK, "O_NONBLOCK cleared (flags %#x)", flags)
}
