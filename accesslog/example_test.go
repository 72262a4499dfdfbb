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

	"github.com/go-chi/chi/v5/middleware"

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

// dropVarying removes the attributes that change from run to run, so that
// the examples have a fixed output.
func dropVarying(groups []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case slog.TimeKey, reqlog.KeyDuration, reqlog.KeyTTFB:
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
	access, err := accesslog.New(logger, accesslog.WithSkip(func(r *http.Request) bool {
		return r.URL.Path == "/healthz"
	}))
	if err != nil {
		panic(err)
	}
	handler := access(mux)

	r := httptest.NewRequest(http.MethodGet, "/items/42?page=2&api_key=s3cret", nil)
	r.RemoteAddr = "203.0.113.7:52113"
	r.Header.Set("User-Agent", "curl/8.0")
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// {"level":"INFO","msg":"http request","http.request.method":"GET","url.path":"/items/42","url.query":"page=2&api_key=REDACTED","http.route":"/items/{id}","network.protocol.version":"1.1","http.response.status_code":200,"http.request.body.size":0,"http.response.body.size":7,"client.address":"203.0.113.7","network.peer.address":"203.0.113.7","user_agent.original":"curl/8.0"}
}

func ExampleNewCombinedHandler() {
	h := accesslog.NewCombinedHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying})
	// The record the middleware writes for one request, at a fixed time.
	r := slog.NewRecord(time.Date(2024, 3, 5, 9, 4, 5, 0, time.FixedZone("", -7*3600)), slog.LevelInfo, accesslog.Message, 0)
	r.AddAttrs(
		slog.String(reqlog.KeyMethod, "GET"),
		slog.String(reqlog.KeyPath, "/caf%C3%A9"),
		slog.String(reqlog.KeyQuery, "q=1"),
		slog.String(reqlog.KeyProtocol, "1.1"),
		slog.Int(reqlog.KeyStatus, 200),
		slog.Int64(reqlog.KeyResponseSize, 512),
		slog.String(reqlog.KeyClient, "203.0.113.7"),
		slog.String(reqlog.KeyUser, "alice"),
		slog.String(reqlog.KeyReferer, "https://example.com/"),
		slog.String(reqlog.KeyUserAgent, "Mozilla/5.0 \"quoted\" K\u00e4se"),
	)
	_ = h.Handle(context.Background(), r)
	// Other records on the same logger are not dropped.
	slog.New(h).Info("listening", "addr", ":8080")
	// Output:
	// 203.0.113.7 - alice [05/Mar/2024:09:04:05 -0700] "GET /caf%C3%A9?q=1 HTTP/1.1" 200 512 "https://example.com/" "Mozilla/5.0 \x22quoted\x22 K\xC3\xA4se"
	// level=INFO msg=listening addr=:8080
}

// Example_fanOut writes the access lines in the combined format to one
// file and every record, access lines and application records, as JSON to
// another, with the standard library's slog.NewMultiHandler; application
// errors also go to stderr (a handler's Level option filters by level).
func Example_fanOut() {
	dir, err := os.MkdirTemp("", "accesslog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	all, err := logfile.Open(filepath.Join(dir, "app.json"))
	if err != nil {
		panic(err)
	}
	accessFile, err := logfile.Open(filepath.Join(dir, "access.log"), logfile.WithRotateEvery(24*time.Hour))
	if err != nil {
		panic(err)
	}
	bufferedAll, err := logfile.NewBufferedWriter(all)
	if err != nil {
		panic(err)
	}
	everything := slog.NewJSONHandler(bufferedAll, nil)

	accessLogger := slog.New(slog.NewMultiHandler(accesslog.NewCombinedHandler(accessFile, nil), everything))
	appLogger := slog.New(slog.NewMultiHandler(everything,
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			appLogger.ErrorContext(r.Context(), "database unreachable")
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	access, err := accesslog.New(accessLogger)
	if err != nil {
		panic(err)
	}
	handler := access(app)
	for _, path := range []string{"/", "/fail"} {
		handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}

	// Close in order: buffer, then files.
	_ = bufferedAll.Close()
	_ = all.Close()
	_ = accessFile.Close()

	combined, _ := os.ReadFile(filepath.Join(dir, "access.log"))
	fmt.Print(regexp.MustCompile(`\[.*?\]`).ReplaceAllString(string(combined), "[…]"))
	records, _ := os.ReadFile(filepath.Join(dir, "app.json"))
	fmt.Println("JSON records:", strings.Count(string(records), "\n"))
	// Output:
	// 192.0.2.1 - - […] "GET / HTTP/1.1" 200 2 "-" "-"
	// 192.0.2.1 - - […] "GET /fail HTTP/1.1" 503 12 "-" "-"
	// JSON records: 3
}

func ExampleNewDevHandler() {
	logger := slog.New(accesslog.NewDevHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: fixedDuration}))
	access, err := accesslog.New(logger)
	if err != nil {
		panic(err)
	}
	access(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nope?x=1", nil))
	// Output:
	// GET /nope?x=1 404 1.500 ms - 19
}

// ExampleWithRequestIDFrom gives each request an id that chi's
// middleware.GetReqID reads, keeping the X-Request-Id of the front proxy
// at 127.0.0.1 and replacing one any other peer sent.
func ExampleWithRequestIDFrom() {
	access, err := accesslog.New(slog.New(slog.NewJSONHandler(io.Discard, nil)),
		accesslog.WithRequestIDFrom("X-Request-Id", "127.0.0.1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	h := access(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := middleware.GetReqID(r.Context())
		fmt.Printf("%s: %d characters, from the proxy: %v\n", r.RemoteAddr, len(id), id == "edge-7f3a")
	}))
	for _, peer := range []string{"127.0.0.1:40000", "192.0.2.1:40000"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Request-Id", "edge-7f3a")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// 127.0.0.1:40000: 9 characters, from the proxy: true
	// 192.0.2.1:40000: 16 characters, from the proxy: false
}
