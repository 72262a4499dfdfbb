package logfile_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/logfile"
	"github.com/shipshape-go/shipshape/reqlog"
)

// fixedDuration makes the dev handler's duration the same on every run.
func fixedDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Key == reqlog.KeyDuration {
		return slog.Duration(a.Key, 1500*time.Microsecond)
	}
	return a
}

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "logfile-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	f, err := logfile.Open(filepath.Join(dir, "access.log"),
		logfile.WithMaxSize(100<<20),          // rotate before 100 MiB
		logfile.WithRotateEvery(24*time.Hour), // and at local midnight
		logfile.WithMaxBackups(14),            // keep two weeks of files
		logfile.WithMaxAge(30*24*time.Hour),   // and nothing older than 30 days
		logfile.WithCompression(true),         // gzip rotated files (the default)
	)
	if err != nil {
		panic(err)
	}
	_, _ = io.WriteString(f, "first line\n")
	_ = f.Rotate() // on demand; logrotate users call Reopen or ReopenOnSignal instead
	_, _ = io.WriteString(f, "second line\n")
	_ = f.Close() // waits for the compression

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}`).ReplaceAllString(e.Name(), "<UTC time>"))
	}
	// Output:
	// access-<UTC time>.log.gz
	// access.log
}

func ExampleNewBufferedWriter() {
	bw, err := logfile.NewBufferedWriter(os.Stdout,
		logfile.WithBufferSize(64<<10),         // write in batches of up to 64 KiB
		logfile.WithFlushInterval(time.Minute), // or every minute (default: second)
	)
	if err != nil {
		panic(err)
	}
	logger := slog.New(accesslog.NewDevHandler(bw, &slog.HandlerOptions{ReplaceAttr: fixedDuration}))
	access, err := accesslog.New(logger)
	if err != nil {
		panic(err)
	}
	access(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nope", nil))
	fmt.Println("buffered so far: nothing")
	_ = bw.Close() // writes what is buffered
	// Output:
	// buffered so far: nothing
	// GET /nope 404 1.500 ms - 19
}
