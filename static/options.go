package static

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Option configures a [Server]; pass options to [New].
type Option func(*config)

type config struct {
	rules      []cacheRule
	index      string
	spa        string
	notFound   http.Handler
	compress   bool
	revalidate time.Duration
	maxRanges  int
	errs       []error
}

func (c *config) fail(err error) { c.errs = append(c.errs, err) }

// WithCacheControl sends value as Cache-Control for the files that match
// pattern. Rules are tried in the order they were added and the first
// match wins; when none matches, the defaults apply: [CacheImmutable] for
// fingerprinted names (a dot-separated hex segment of 8+ digits with a
// letter, as in app.3f9a1c2b.js), [CacheRevalidate] for .html and .htm,
// [CacheDefault] for the rest.
//
// Patterns use [path.Match] syntax and are matched against the name of
// the file that is served (index and SPA fallback files by their own
// name, precompressed variants by the name of the original):
//
//   - without a '/', against the base name at any depth: "*.woff2",
//     "robots.txt";
//   - with a '/', against the whole path from the root (a leading '/' is
//     allowed and anchors there): "/robots.txt", "docs/*.pdf";
//   - ending in '/', against a directory: every file below it, at any
//     depth: "admin/", "/vendor/*/".
//
// New returns an error for a malformed pattern or a value that is empty
// or holds control characters.
func WithCacheControl(pattern, value string) Option {
	return func(c *config) {
		r, err := newCacheRule(pattern, value)
		if err != nil {
			c.fail(err)
			return
		}
		c.rules = append(c.rules, r)
	}
}

// WithIndex sets the file served for a directory request ("/docs/"); the
// default is "index.html". An empty name turns index files off, so that
// directory requests get the not-found handler. Directory listings are
// never produced. A request for the index file by name (".../index.html")
// is redirected to the directory ("./"), as net/http does.
func WithIndex(name string) Option {
	return func(c *config) {
		if name != "" && (strings.Contains(name, "/") || !validName(name)) {
			c.fail(errors.New("static: index must be a plain file name, not hidden: " + strconv.Quote(name)))
			return
		}
		c.index = name
	}
}

// WithSPAFallback serves the file name (a path in the file system, such
// as "index.html") with status 200 for requests that match no file and
// whose last segment has no extension ("/settings/profile"), so that a
// single-page application's client-side routes load the application.
// Missing names with an extension ("/app.js") and hidden paths still get
// the not-found handler. New checks that the file exists.
func WithSPAFallback(name string) Option {
	return func(c *config) {
		n, ok := cleanPath(name)
		if !ok || n == "." {
			c.fail(errors.New("static: spa fallback must be a file path without hidden segments: " + strconv.Quote(name)))
			return
		}
		c.spa = n
	}
}

// WithNotFound sets the handler for requests that match no file (and no
// SPA fallback), including hidden paths and escape attempts. The default
// writes a 404 problem details (RFC 9457) body.
func WithNotFound(h http.Handler) Option {
	return func(c *config) {
		if h == nil {
			c.fail(errors.New("static: not-found handler is nil"))
			return
		}
		c.notFound = h
	}
}

// WithCompression turns on-the-fly compression (gzip and zstd, with
// github.com/klauspost/compress/gzhttp) on or off; it is on by default.
// Only compressible types (text, JavaScript, JSON, XML, SVG, WebAssembly,
// uncompressed fonts, …) of at least 1 KiB are compressed; images,
// video, audio, archives and woff/woff2 fonts never are. Precompressed
// variants (.br, .zst, .gz files beside the original) are served either
// way.
func WithCompression(on bool) Option {
	return func(c *config) { c.compress = on }
}

func validName(name string) bool {
	n, ok := cleanPath(name)
	return ok && n == name
}

// WithRevalidate sets how long a file kept in memory is trusted after its
// size and modification time were last checked, on a mutable file system
// such as [Dir]; the default is one second. Within that time a request
// costs no file system call; an edit is seen at most that late. 0 checks
// on every request (a stat of the file and of its three possible
// variants, for tools that write and read back at once). It is also how
// often new or removed precompressed variants, and directories, are
// noticed. Files sent from disk (over 64 KiB) are checked on every
// request whatever this says, and an embed.FS is never checked.
func WithRevalidate(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail(errors.New("static: revalidate interval must be >= 0"))
			return
		}
		c.revalidate = d
	}
}

// defaultMaxRanges is the default of WithMaxRanges.
const defaultMaxRanges = 16

// WithMaxRanges sets how many byte ranges one request may ask for; the
// default is 16. A Range header with more is ignored and the whole file
// is sent with 200, as nginx does past max_ranges: a multipart response
// of thousands of one-byte parts costs about 100 ms of CPU and many times
// the file's size on the wire. 0 turns range requests off: Range is
// always ignored and responses carry "Accept-Ranges: none". Whatever the
// limit, ranges whose lengths add up to more than the file (overlapping
// ones, most likely) get the whole file with 200 too. New returns an
// error for a negative n.
func WithMaxRanges(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.fail(errors.New("static: max ranges must be >= 0"))
			return
		}
		c.maxRanges = n
	}
}
