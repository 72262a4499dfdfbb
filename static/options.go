package static

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/problem"
)

// Option configures a [Server]; pass options to [New]. A nil Option is an
// error.
type Option func(*config)

type config struct {
	rules      []cacheRule
	index      string
	spa        string
	notFound   http.Handler
	compress   bool
	revalidate time.Duration
	maxRanges  int
	logger     *slog.Logger // nil: slog.Default() at the time of each record
	problem    problem.Writer
	meter      metric.MeterProvider
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
			c.fail(fmt.Errorf("static: WithCacheControl: %w", err))
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
			c.fail(errors.New("static: WithIndex: " + strconv.Quote(name) + " is not a plain file name, or is hidden"))
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
// the not-found handler. New returns an error for a name with a hidden
// segment and for one that is not a regular file in the file system.
func WithSPAFallback(name string) Option {
	return func(c *config) {
		n, ok := cleanPath(name)
		if !ok || n == "." {
			c.fail(errors.New("static: WithSPAFallback: " + strconv.Quote(name) + " is not a file path without hidden segments"))
			return
		}
		c.spa = n
	}
}

// WithNotFound sets the handler for requests that match no file (and no
// SPA fallback), including hidden paths and escape attempts. The default
// is a 404 written by the [WithProblemWriter] Writer. A nil handler is an
// error.
func WithNotFound(h http.Handler) Option {
	return func(c *config) {
		if h == nil {
			c.fail(errors.New("static: WithNotFound: nil handler"))
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
// request whatever this says, and an embed.FS is never checked. A negative
// d is an error.
func WithRevalidate(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail(fmt.Errorf("static: WithRevalidate: %v, want >= 0", d))
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
			c.fail(fmt.Errorf("static: WithMaxRanges: %d, want >= 0", n))
			return
		}
		c.maxRanges = n
	}
}

// WithLogger sets the logger of what goes wrong on the server's side
// (default, when the option is not given: slog.Default() at the time of
// each record, so that slog.SetDefault reaches it). Records are at error
// level, with the request's url.path and the error, and at most one per
// 10 seconds for each message (the rest are counted in the next one's
// "suppressed"):
//
//   - "static: file system error": a file system error that is the
//     server's problem (EMFILE, EIO, ENOMEM, …), answered 500, or met
//     while reading a precompressed variant (which is then not offered;
//     the record has the variant's name as "file" and no url.path);
//   - "static: file kept changing while being served": a file that
//     changed under every attempt to read or send it (written in place,
//     most likely), answered 503.
//
// A nil logger is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail(errors.New("static: WithLogger: nil logger"))
			return
		}
		c.logger = l
	}
}

// WithProblemWriter sets how the Server writes the error responses it
// generates itself (default [problem.Write]: RFC 9457 problem details, or
// text/plain for a client that prefers it): 404 for a name that matches
// nothing (unless [WithNotFound] is set, which then answers instead), 405
// for a method other than GET and HEAD (with Allow: GET, HEAD), 406 when
// the client refuses every encoding the file has, 500 for a file system
// error that is the server's problem, and 503 (with Retry-After: 1) for a
// file that kept changing while it was read. The headers the Server set
// before (Allow, Retry-After, Vary) are on the response already; the
// Writer must keep them.
//
// The 412 (If-Match, If-Unmodified-Since) and 416 (a range past the end)
// of a conditional request are written by [http.ServeContent], which
// evaluates those requests, with the body net/http gives them (none for
// 412, a line of text for 416): taking them over would need a wrapper on
// every conditional request to swallow that body.
//
// A nil Writer is an error.
func WithProblemWriter(w problem.Writer) Option {
	return func(c *config) {
		if w == nil {
			c.fail(errors.New("static: WithProblemWriter: nil Writer"))
			return
		}
		c.problem = w
	}
}
