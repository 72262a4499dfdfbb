// Package static serves files from disk or an embed.FS with what nginx
// gives a static site: precompressed variants, on-the-fly compression,
// strong validators, range requests, a cache policy, and safe defaults.
//
//	//go:embed dist
//	var dist embed.FS
//
//	assets, _ := fs.Sub(dist, "dist")
//	files, err := static.New(assets,
//		static.WithSPAFallback("index.html"),
//		static.WithCacheControl("/api-docs/", "no-store"),
//	)
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle("/static/", http.StripPrefix("/static", files))
//
// or, from a directory that may change while the server runs:
//
//	fsys, err := static.Dir("/srv/www")
//	...
//	files, err := static.New(fsys)
//
// # What is served
//
// GET and HEAD only (405 with Allow otherwise). Hidden names (a path
// segment starting with '.', such as .env or .git/config) are never
// served, nor are directory listings: a directory request serves its
// index.html ([WithIndex]), and ".../index.html" redirects to "./" as in
// net/http. [Dir] confines the file system with os.Root, so neither "..",
// absolute paths nor symbolic links reach outside the directory (a hard
// link is the file itself and is served: see Dir). Only regular files are
// served: FIFOs, sockets and devices are 404s, and a Dir is opened so
// that none of them can make a request wait ([New] says what other file
// systems can promise).
//
// # Encodings
//
// When app.js.br, app.js.zst or app.js.gz exists beside app.js, the best
// one the client accepts is sent (q-values, "*" and "identity;q=0"
// honoured), with Content-Encoding, the original's Content-Type and
// Vary: Accept-Encoding. Otherwise, compressible types of at least 1 KiB
// are compressed on the fly with gzip or zstd by
// github.com/klauspost/compress/gzhttp ([WithCompression]).
//
// # Validators and caching
//
// Every representation has its own ETag: strong, from a SHA-256 of the
// content for the file and each precompressed variant, weak for on-the-fly
// compression (whose bytes depend on the compressor). If-None-Match gets a
// 304 for every encoding; If-Modified-Since, If-Match, If-Unmodified-Since,
// If-Range and single or multiple ranges are handled by
// [net/http.ServeContent] for files and precompressed variants (not for
// on-the-fly compression, where Range is ignored). A request for more
// than 16 ranges ([WithMaxRanges]), or for ranges that add up to more
// than the file, gets the whole file with 200. Cache-Control follows
// [WithCacheControl] rules, then the defaults [CacheImmutable] for
// fingerprinted names, [CacheRevalidate] for HTML and [CacheDefault].
//
// # Performance
//
// Hashes, types and variants are computed once per file and cached (for a
// mutable file system, keyed by size and modification time and checked at
// most once a second, [WithRevalidate]). Files up to 64 KiB are kept in
// memory (32 MiB in all) and sent with a single write; larger files are
// sent from disk with sendfile, the response writer's io.ReaderFrom being
// reached with the *os.File (keep it when wrapping the writer).
//
// # Errors
//
// The error responses the Server generates itself (404, 405, 406, 500 and
// 503) are written by a [problem.Writer], [problem.Write] unless
// [WithProblemWriter] sets the service's own; [WithNotFound] takes the
// 404s instead. A file system error that is the server's problem (EMFILE,
// EIO, …) is a 500 and is logged ([WithLogger]; slog.Default() unless
// set); every other error about a name (missing, no permission, a link
// out of the root) is a 404, and error bodies never carry internal error
// text. A file that changes while it is read or sent is read again, up to
// three times in all for one request; one that is still changing then is
// answered 503 with Retry-After: 1, and logged.
//
// Examples: [ExampleNew], [ExampleDir], [ExampleWithCacheControl],
// [ExampleWithSPAFallback], [ExampleWithProblemWriter].
package static
