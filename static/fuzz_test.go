package static_test

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipshape-go/shipshape/static"
)

// FuzzRequestPath sends arbitrary decoded paths (and Accept-Encoding
// values) to a Server over the escape site. It must never panic, and a
// 200 may only carry the bytes of a file inside the root (as it is,
// precompressed, or compressed on the fly): nothing outside the root,
// nothing hidden.
//
//	go test -run '^$' -fuzz FuzzRequestPath -fuzztime 60s ./static
func FuzzRequestPath(f *testing.F) {
	root := escapeSite(f)
	fsys, err := static.Dir(root)
	if err != nil {
		f.Fatal(err)
	}
	plain, err := static.New(fsys)
	if err != nil {
		f.Fatal(err)
	}
	spa, err := static.New(fsys, static.WithSPAFallback("index.html"))
	if err != nil {
		f.Fatal(err)
	}

	// Everything a 200 may contain: the regular, visible files of the
	// root, as they are on disk.
	allowed := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			allowed[string(b)] = true
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}

	for _, target := range traversalCorpus {
		if u, err := url.ParseRequestURI(target); err == nil {
			f.Add(u.Path, "")
			f.Add(u.Path, "gzip, br, zstd")
		}
	}
	for _, p := range []string{"/", "/docs/", "/docs", "/index.html", "/app.3f9a1c2b.js", "/style.css", "/settings/x",
		"/\x00", "/a\\b", "/\xff\xfe", "/..", "/.", "", "docs/guide.html", "//", "/%", "/docs/./guide.html"} {
		f.Add(p, "gzip;q=0.5, identity;q=0, *;q=0")
	}

	f.Fuzz(func(t *testing.T, p, ae string) {
		for _, s := range []http.Handler{plain, spa} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req := &http.Request{Method: method, URL: &url.URL{Path: p}, Header: http.Header{}, Host: "example.com", RequestURI: "/"}
				if ae != "" {
					req.Header.Set("Accept-Encoding", ae)
				}
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				body := rec.Body.Bytes()
				for _, m := range secretMarkers {
					if bytes.Contains(body, []byte(m)) {
						t.Fatalf("path %q: status %d leaked %q", p, rec.Code, m)
					}
				}
				switch rec.Code {
				case http.StatusOK:
					if method == http.MethodHead {
						if len(body) != 0 {
							t.Fatalf("path %q: HEAD with a body", p)
						}
						continue
					}
					plainBody := body
					switch enc := rec.Header().Get("Content-Encoding"); enc {
					case "gzip", "zstd":
						plainBody = decode(t, enc, body)
					case "br":
						plainBody = nil // compared as the .br file itself below
					}
					if !allowed[string(plainBody)] && !allowed[string(body)] {
						t.Fatalf("path %q (Accept-Encoding %q): 200 with bytes that are no visible file of the root: %q",
							p, ae, firstLine(string(body)))
					}
				case http.StatusMovedPermanently, http.StatusNotFound, http.StatusNotAcceptable:
				default:
					t.Fatalf("path %q (Accept-Encoding %q): unexpected status %d", p, ae, rec.Code)
				}
			}
		}
	})
}
