package accesslog_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	slogmulti "github.com/samber/slog-multi"

	"github.com/shipshape-go/shipshape/accesslog"
)

// fixedDuration makes the dev handler's duration the same on every run.
func fixedDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Key == accesslog.KeyDuration {
		return slog.Duration(a.Key, 1500*time.Microsecond)
	}
	return a
}

// dropVarying removes the attributes that change from run to run, so that
// the examples have a fixed output.
func dropVarying(groups []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case slog.TimeKey, accesslog.KeyDuration, accesslog.KeyTTFB:
		return slog.Attr{}
	}
	return a
}

func ExampleNew() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "item "+r.PathValue("id"))
	})
	handler := accesslog.New(logger, accesslog.WithSkip(func(r *http.Request) bool {
		return r.URL.Path == "/healthz"
	}))(mux)

	r := httptest.NewRequest(http.MethodGet, "/items/42?page=2&api_key=s3cret", nil)
	r.RemoteAddr = "203.0.113.7:52113"
	r.Header.Set("User-Agent", "curl/8.0")
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"GET","url.path":"/items/42","url.query":"page=2&api_key=REDACTED","http.route":"/items/{id}","network.protocol.version":"1.1","http.response.status_code":200,"http.request.body.size":0,"http.response.body.size":7,"client.address":"203.0.113.7","network.peer.address":"203.0.113.7","user_agent.original":"curl/8.0"}
}

func ExampleAddAttrs() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying}))
	handler := accesslog.New(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Any handler or middleware below accesslog can add to the line.
		accesslog.AddAttrs(r.Context(), slog.String("tenant", "acme"), slog.Int("items", 3))
		w.WriteHeader(http.StatusNoContent)
	}))
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/cart", nil))
	// Output:
	// level=INFO msg="http request" http.request.method=DELETE url.path=/cart network.protocol.version=1.1 http.response.status_code=204 http.request.body.size=0 http.response.body.size=0 client.address=192.0.2.1 network.peer.address=192.0.2.1 tenant=acme items=3
}

func ExampleNewCombinedHandler() {
	h := accesslog.NewCombinedHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying})
	// The record the middleware writes for one request, at a fixed time.
	r := slog.NewRecord(time.Date(2024, 3, 5, 9, 4, 5, 0, time.FixedZone("", -7*3600)), slog.LevelInfo, accesslog.Message, 0)
	r.AddAttrs(
		slog.String(accesslog.KeyMethod, "GET"),
		slog.String(accesslog.KeyPath, "/caf%C3%A9"),
		slog.String(accesslog.KeyQuery, "q=1"),
		slog.String(accesslog.KeyProtocol, "1.1"),
		slog.Int(accesslog.KeyStatus, 200),
		slog.Int64(accesslog.KeyResponseSize, 512),
		slog.String(accesslog.KeyClient, "203.0.113.7"),
		slog.String(accesslog.KeyUser, "alice"),
		slog.String(accesslog.KeyReferer, "https://example.com/"),
		slog.String(accesslog.KeyUserAgent, "Mozilla/5.0 \"quoted\" K\u00e4se"),
	)
	_ = h.Handle(context.Background(), r)
	// Other records on the same logger are not dropped.
	slog.New(h).Info("listening", "addr", ":8080")
	// Output:
	// 203.0.113.7 - alice [05/Mar/2024:09:04:05 -0700] "GET /caf%C3%A9?q=1 HTTP/1.1" 200 512 "https://example.com/" "Mozilla/5.0 \x22quoted\x22 K\xC3\xA4se"
	// level=INFO msg=listening addr=:8080
}

// Example_fanOut sends everything as JSON to one file, the access lines in
// the combined format to another, and errors to stderr, with slog-multi.
func Example_fanOut() {
	dir, err := os.MkdirTemp("", "accesslog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	all, err := accesslog.OpenFile(filepath.Join(dir, "app.json"))
	if err != nil {
		panic(err)
	}
	access, err := accesslog.OpenFile(filepath.Join(dir, "access.log"), accesslog.WithRotateEvery(24*time.Hour))
	if err != nil {
		panic(err)
	}
	bufferedAll := accesslog.NewBufferedWriter(all)
	isError := func(_ context.Context, r slog.Record) bool { return r.Level >= slog.LevelError }

	logger := slog.New(slogmulti.Fanout(
		slog.NewJSONHandler(bufferedAll, nil),
		slogmulti.Router().Add(accesslog.NewCombinedHandler(access, nil), slogmulti.MessageIs(accesslog.Message)).Handler(),
		slogmulti.Router().Add(slog.NewTextHandler(os.Stderr, nil), isError).Handler(),
	))

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			logger.ErrorContext(r.Context(), "database unreachable")
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	handler := accesslog.New(logger)(app)
	for _, path := range []string{"/", "/fail"} {
		handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}

	// Close in order: buffer, then files.
	_ = bufferedAll.Close()
	_ = all.Close()
	_ = access.Close()

	combined, _ := os.ReadFile(filepath.Join(dir, "access.log"))
	fmt.Print(regexp.MustCompile(`\[.*?\]`).ReplaceAllString(string(combined), "[…]"))
	everything, _ := os.ReadFile(filepath.Join(dir, "app.json"))
	fmt.Println("JSON records:", strings.Count(string(everything), "\n"))
	// Output:
	// 192.0.2.1 - - […] "GET / HTTP/1.1" 200 2 "-" "-"
	// 192.0.2.1 - - […] "GET /fail HTTP/1.1" 503 12 "-" "-"
	// JSON records: 3
}

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "accesslog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	f, err := accesslog.OpenFile(filepath.Join(dir, "access.log"),
		accesslog.WithMaxSize(100<<20),          // rotate before 100 MiB
		accesslog.WithRotateEvery(24*time.Hour), // and at local midnight
		accesslog.WithMaxBackups(14),            // keep two weeks of files
		accesslog.WithMaxAge(30*24*time.Hour),   // and nothing older than 30 days
		accesslog.WithCompress(true),            // gzip rotated files (the default)
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
	bw := accesslog.NewBufferedWriter(os.Stdout,
		accesslog.WithBufferSize(64<<10),         // write in batches of up to 64 KiB
		accesslog.WithFlushInterval(time.Minute), // or every minute (default: second)
	)
	logger := slog.New(accesslog.NewDevHandler(bw, &slog.HandlerOptions{ReplaceAttr: fixedDuration}))
	accesslog.New(logger)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nope", nil))
	fmt.Println("buffered so far: nothing")
	_ = bw.Close() // writes what is buffered
	// Output:
	// buffered so far: nothing
	// GET /nope 404 1.500 ms - 19
}

func ExampleNewDevHandler() {
	logger := slog.New(accesslog.NewDevHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: fixedDuration}))
	accesslog.New(logger)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nope?x=1", nil))
	// Output:
	// GET /nope?x=1 404 1.500 ms - 19
}
