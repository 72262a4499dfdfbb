package static_test

import (
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/static"
)

// An embedded site mounted under /static/, as an application ships its
// assets in the binary. siteEmbed is declared with
//
//	//go:embed all:testdata/site
//	var siteEmbed embed.FS
func ExampleNew() {
	assets, err := fs.Sub(siteEmbed, "testdata/site")
	if err != nil {
		log.Fatal(err)
	}
	files, err := static.New(assets)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static", files))

	for _, target := range []string{"/static/app.3f9a1c2b.js", "/static/", "/static/docs", "/static/.env"} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Printf("%s → %d %q %q %q\n", target, rec.Code,
			rec.Header().Get("Content-Encoding"), rec.Header().Get("Cache-Control"), rec.Header().Get("Location"))
	}
	// Output:
	// /static/app.3f9a1c2b.js → 200 "br" "public, max-age=31536000, immutable" ""
	// /static/ → 200 "" "no-cache" ""
	// /static/docs → 301 "" "" "docs/"
	// /static/.env → 404 "" "no-store" ""
}

// A directory on disk, confined by os.Root: edits are picked up, links
// out of the directory are not followed.
func ExampleDir() {
	dir, err := os.MkdirTemp("", "static-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from disk\n"), 0o644)
	_ = os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))

	fsys, err := static.Dir(dir)
	if err != nil {
		log.Fatal(err)
	}
	files, err := static.New(fsys)
	if err != nil {
		log.Fatal(err)
	}
	for _, target := range []string{"/hello.txt", "/passwd", "/../etc/passwd"} {
		rec := httptest.NewRecorder()
		files.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("%s → %d\n", target, rec.Code)
	}
	// Output:
	// /hello.txt → 200
	// /passwd → 404
	// /../etc/passwd → 404
}

// Cache-Control rules: the first matching pattern wins; files that match
// none get the defaults.
func ExampleWithCacheControl() {
	fsys := fstest.MapFS{
		"fonts/inter.woff2":     {Data: []byte("font")},
		"admin/report.json":     {Data: []byte("{}")},
		"robots.txt":            {Data: []byte("User-agent: *\n")},
		"app.3f9a1c2b.js":       {Data: []byte("1")},
		"index.html":            {Data: []byte("<p>hi</p>")},
		"img/logo.png":          {Data: []byte("png")},
		"admin/app.9e8d7c6b.js": {Data: []byte("2")},
	}
	files, err := static.New(fsys,
		static.WithCacheControl("*.woff2", static.CacheImmutable),
		static.WithCacheControl("admin/", "no-store"),
		static.WithCacheControl("/robots.txt", "public, max-age=86400"),
	)
	if err != nil {
		log.Fatal(err)
	}
	for _, target := range []string{"/fonts/inter.woff2", "/admin/report.json", "/admin/app.9e8d7c6b.js", "/robots.txt", "/app.3f9a1c2b.js", "/", "/img/logo.png"} {
		rec := httptest.NewRecorder()
		files.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("%-24s %s\n", target, rec.Header().Get("Cache-Control"))
	}
	// Output:
	// /fonts/inter.woff2       public, max-age=31536000, immutable
	// /admin/report.json       no-store
	// /admin/app.9e8d7c6b.js   no-store
	// /robots.txt              public, max-age=86400
	// /app.3f9a1c2b.js         public, max-age=31536000, immutable
	// /                        no-cache
	// /img/logo.png            public, max-age=3600
}

// A single-page application: client-side routes (no extension) get
// index.html; missing assets still get 404.
func ExampleWithSPAFallback() {
	fsys := fstest.MapFS{
		"index.html":      {Data: []byte("<div id=app></div>")},
		"app.3f9a1c2b.js": {Data: []byte("render()")},
	}
	files, err := static.New(fsys, static.WithSPAFallback("index.html"))
	if err != nil {
		log.Fatal(err)
	}
	for _, target := range []string{"/settings/profile", "/missing.js"} {
		rec := httptest.NewRecorder()
		files.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("%s → %d %s\n", target, rec.Code, rec.Body.String())
	}
	// Output:
	// /settings/profile → 200 <div id=app></div>
	// /missing.js → 404 {"type":"about:blank","title":"Not Found","status":404}
}

// A service's own error format for the errors static answers itself
// (here 405 and 404), the same Writer the service gives every other
// shipshape package.
func ExampleWithProblemWriter() {
	apiError := func(w http.ResponseWriter, r *http.Request, d problem.Details) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.Status)
		fmt.Fprintf(w, `{"error":{"code":%d}}`, d.Status)
	}
	files, err := static.New(fstest.MapFS{"app.js": {Data: []byte("1")}}, static.WithProblemWriter(apiError))
	if err != nil {
		log.Fatal(err)
	}
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/app.js", nil),
		httptest.NewRequest(http.MethodGet, "/missing.js", nil),
	} {
		rec := httptest.NewRecorder()
		files.ServeHTTP(rec, req)
		fmt.Printf("%s %s → %d Allow=%q %s\n", req.Method, req.URL.Path, rec.Code, rec.Header().Get("Allow"), rec.Body.String())
	}
	// Output:
	// POST /app.js → 405 Allow="GET, HEAD" {"error":{"code":405}}
	// GET /missing.js → 404 Allow="" {"error":{"code":404}}
}
