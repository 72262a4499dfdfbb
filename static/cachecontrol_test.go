package static

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsFingerprinted(t *testing.T) {
	tests := []struct {
		base string
		want bool
	}{
		{"app.3f9a1c2b.js", true},
		{"app.3F9A1C2B.js", true},
		{"vendor.chunk.0123456789abcdef0123.js", true},
		{"3f9a1c2b.js", true},
		{"app.3f9a1c2b.js.map", true},
		{"app.3f9a1c2.js", false},      // 7 hex digits
		{"app.js", false},              // no hash
		{"report.20240131.pdf", false}, // digits only: a date, not a hash
		{"app.3f9a1c2g.js", false},     // 'g' is not hex
		{"app.3f9a1c2b", false},        // the extension is never the hash
		{"app-3f9a1c2b.js", false},     // dash-separated: add a rule
		{"deadbeefcafe.tar.gz", true},  // letters only still count
		{"index.html", false},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			assert.Equal(t, tt.want, isFingerprinted(tt.base), "isFingerprinted(%q)", tt.base)
		})
	}
}

func TestCacheControl(t *testing.T) {
	rule := func(p, v string) cacheRule {
		r, err := newCacheRule(p, v)
		require.NoError(t, err, "pattern %q", p)
		return r
	}
	rules := []cacheRule{
		rule("*.woff2", "font"),
		rule("/robots.txt", "robots"),
		rule("docs/*.pdf", "docs-pdf"),
		rule("admin/", "admin"),
		rule("/vendor/*/", "vendor"),
		rule("*.js", "js-after-admin"),
	}
	tests := []struct {
		name string
		want string
	}{
		{"fonts/a.woff2", "font"},
		{"a.woff2", "font"},
		{"robots.txt", "robots"},
		{"sub/robots.txt", CacheDefault}, // anchored at the root
		{"docs/a.pdf", "docs-pdf"},
		{"docs/sub/a.pdf", CacheDefault},           // '*' does not cross '/'
		{"admin/x.html", "admin"},                  // the first match wins over defaults
		{"admin/deep/er/app.3f9a1c2b.js", "admin"}, // and over later rules
		{"admin", CacheDefault},                    // the directory itself is not below it
		{"vendor/lib/x.css", "vendor"},
		{"vendor/x.css", CacheDefault},
		{"app.js", "js-after-admin"},
		{"app.3f9a1c2b.css", CacheImmutable},
		{"index.html", CacheRevalidate},
		{"docs/old.htm", CacheRevalidate},
		{"data.json", CacheDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cacheControl(rules, tt.name)
			assert.Equal(t, tt.want, got, "cacheControl(%q): got %q, want %q", tt.name, got, tt.want)
		})
	}
	t.Run("defaults without rules", func(t *testing.T) {
		assert.Equal(t, CacheImmutable, cacheControl(nil, "js/app.3f9a1c2b.js"))
		assert.Equal(t, CacheRevalidate, cacheControl(nil, "index.html"))
		assert.Equal(t, CacheDefault, cacheControl(nil, "logo.png"))
	})
}

func TestNewCacheRuleErrors(t *testing.T) {
	tests := []struct {
		name, pattern, value string
	}{
		{"empty pattern", "", "no-cache"},
		{"only slashes", "/", "no-cache"},
		{"malformed glob", "[a-", "no-cache"},
		{"empty value", "*.js", ""},
		{"blank value", "*.js", "  "},
		{"header injection", "*.js", "no-cache\r\nSet-Cookie: a=b"},
		{"NUL in value", "*.js", "no\x00cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCacheRule(tt.pattern, tt.value)
			assert.Error(t, err, "newCacheRule(%q, %q) should fail", tt.pattern, tt.value)
		})
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"/", ".", true},
		{"", ".", true},
		{"/app.js", "app.js", true},
		{"app.js", "app.js", true},
		{"/docs/", "docs", true},
		{"/a//b///c", "a/b/c", true},
		{"/a/b.", "a/b.", true},
		{"/../etc/passwd", "", false},
		{"/a/../b", "", false},
		{"/./a", "", false},
		{"/..", "", false},
		{"/.env", "", false},
		{"/.git/config", "", false},
		{"/a/.hidden/b", "", false},
		{"/a\\..\\b", "", false},
		{"/a\x00.js", "", false},
		{"/a\n.js", "", false},
		{"/\xc0\xae\xc0\xae/etc/passwd", "", false}, // overlong "..", invalid UTF-8
		{"/%2e%2e/x", "%2e%2e/x", true},             // already decoded once: a literal name
		{"/ünïcode.txt", "ünïcode.txt", true},
	}
	if runtime.GOOS == "windows" {
		tests = append(tests, []struct {
			in   string
			want string
			ok   bool
		}{
			{"/CON", "", false},
			{"/COM1", "", false},
			{"/C:/Windows/win.ini", "", false},
		}...)
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := cleanPath(tt.in)
			assert.Equal(t, tt.ok, ok, "cleanPath(%q) ok", tt.in)
			assert.Equal(t, tt.want, got, "cleanPath(%q)", tt.in)
		})
	}
}

func TestCompressible(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"text/html; charset=utf-8", true},
		{"text/css; charset=utf-8", true},
		{"text/javascript; charset=utf-8", true},
		{"application/javascript", true},
		{"application/json", true},
		{"application/manifest+json", true},
		{"image/svg+xml", true},
		{"application/wasm", true},
		{"font/ttf", true},
		{"image/x-icon", true},
		{"TEXT/PLAIN", true},
		{"image/png", false},
		{"image/jpeg", false},
		{"image/webp", false},
		{"image/avif", false},
		{"video/mp4", false},
		{"audio/mpeg", false},
		{"font/woff2", false},
		{"font/woff", false},
		{"application/zip", false},
		{"application/gzip", false},
		{"application/x-7z-compressed", false},
		{"application/zstd", false},
		{"application/pdf", false},
		{"application/octet-stream", false},
		{"application/epub+zip", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			assert.Equal(t, tt.want, compressible(tt.ct), "compressible(%q)", tt.ct)
		})
	}
}
