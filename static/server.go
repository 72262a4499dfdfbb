package static

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/reqlog"
)

// minCompressSize is the smallest file compressed on the fly (unless the
// client refuses identity): below it, compression costs more than the
// bytes it saves. It is gzhttp's default.
const minCompressSize = gzhttp.DefaultMinSize

// Server serves the files of an [fs.FS] over HTTP. It is an
// [http.Handler], safe for concurrent use; create it with [New].
//
// What it knows about each file (content hash, type, precompressed
// variants, and the content itself for small files) is computed on first
// use and cached. For an [embed.FS] given as is, the cache is never
// revalidated; for any other file system (such as [Dir], or an fs.Sub of
// an embed.FS, where a check is an in-memory lookup) the size and
// modification time of a file and of its precompressed variants are
// checked again when the last check is older than a second
// ([WithRevalidate]), and on every request for files sent from disk, so
// edits are picked up.
type Server struct {
	fsys      fs.FS
	dir       *dirFS // fsys, when it is a Dir: opened without blocking
	immutable bool   // embed.FS: contents never change
	rules     []cacheRule
	index     string
	spa       string
	notFound  http.Handler
	problem   problem.Writer
	gzip      http.Handler // serveCompressed behind gzhttp; nil: no on-the-fly compression
	cache     *cache
	errs      *errlog.Reporter // file system errors: 500, unreadable variants
	unsettled *errlog.Reporter // files that kept changing: 503
	now       func() time.Time
	metrics   *metrics
	// revalidate is how long a file on a mutable file system is trusted
	// after its size and modification time were last checked: within it
	// a request costs no file system call (like nginx's
	// open_file_cache_valid). It is also how often a file is checked for
	// precompressed variants that appeared, vanished or changed, and a
	// directory for still being one.
	revalidate time.Duration
	// maxRanges is the most byte ranges a request may ask for; past it
	// Range is ignored. 0: ranges are off.
	maxRanges     int
	acceptRangesH []string // "bytes", or "none" when ranges are off
}

// New returns a Server for the files of fsys, configured by opts. It
// returns an error for a nil fsys, one whose root is not a directory, a
// nil or invalid option, or a missing SPA fallback file.
//
// Only regular files are served; a FIFO, socket or device is a 404. A
// [Dir], as Dir returns it, is opened with O_NONBLOCK and checked on the
// descriptor, so nothing can make a request wait in open. Any other
// fs.FS (os.DirFS, fs.Sub of a Dir, a wrapper) has no way to take the
// flag: a name is stat'ed before it is opened and only a regular file is
// opened, which costs a stat per request for files sent from disk and
// leaves a window: a FIFO renamed over a file between the stat and the
// open holds that request, and an OS thread, until something opens the
// FIFO for writing. Use Dir for a directory that others can write to.
func New(fsys fs.FS, opts ...Option) (*Server, error) {
	if fsys == nil {
		return nil, errors.New("static: file system is nil")
	}
	cfg := config{index: "index.html", compress: true, revalidate: defaultRevalidate, maxRanges: defaultMaxRanges, problem: problem.Write}
	for _, o := range opts {
		if o == nil {
			cfg.fail(errors.New("static: nil Option"))
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	// A root that is not there (os.DirFS of a missing directory, a Dir
	// removed since) would answer 404 to everything, silently.
	if fi, err := fs.Stat(fsys, "."); err != nil {
		return nil, fmt.Errorf("static: file system root: %w", err)
	} else if !fi.IsDir() {
		return nil, errors.New("static: file system root is not a directory")
	}
	s := &Server{
		fsys:      fsys,
		rules:     cfg.rules,
		index:     cfg.index,
		spa:       cfg.spa,
		notFound:  cfg.notFound,
		problem:   cfg.problem,
		cache:     newCache(),
		errs:      errlog.New(cfg.logger, "static: file system error", 0),
		unsettled: errlog.New(cfg.logger, "static: file kept changing while being served", 0),
		now:       time.Now,

		revalidate:    cfg.revalidate,
		maxRanges:     cfg.maxRanges,
		acceptRangesH: bytesH,
	}
	if s.maxRanges == 0 {
		s.acceptRangesH = noneH
	}
	var err error
	if s.metrics, err = newMetrics(cfg.meter); err != nil {
		return nil, fmt.Errorf("static: WithMeterProvider: %w", err)
	}
	switch fsys := fsys.(type) {
	case embed.FS, *embed.FS:
		s.immutable = true
	case *dirFS:
		s.dir = fsys
	}
	if s.notFound == nil {
		s.notFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.problem(w, r, problem.Details{Status: http.StatusNotFound})
		})
	}
	if s.spa != "" {
		if fi, err := fs.Stat(fsys, s.spa); err != nil || !fi.Mode().IsRegular() {
			return nil, errors.New("static: WithSPAFallback: " + strconv.Quote(s.spa) + " is not a file in the file system")
		}
	}
	if cfg.compress {
		// The Server decides what to compress before gzhttp sees the
		// response (type and size are known), so gzhttp gets no minimum
		// size and the same type filter. It must not touch the ETag
		// (SuffixETag, DropETag): the ETag of the compressed
		// representation is set before the conditional request is
		// evaluated, otherwise If-None-Match never matches and 304s are
		// lost. One handler serves every request: what it sends comes
		// in the request's context.
		wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(0), gzhttp.ContentTypeFilter(compressible))
		if err != nil {
			return nil, fmt.Errorf("static: gzhttp: %w", err)
		}
		s.gzip = wrap(http.HandlerFunc(serveCompressed))
	}
	return s, nil
}

// errStale reports that what a request was about to send no longer
// matches the file system: the file changed since it was cached, or while
// it was being read. Nothing has been written; the request is resolved
// again from the top (ServeHTTP), at most maxAttempts times in all.
var errStale = errors.New("static: file changed while being served")

// maxAttempts bounds how often one request is resolved before it is
// answered 503: a file that changes under every attempt is being written
// in place, and reading it again would only find it changing again.
const maxAttempts = 3

// ServeHTTP serves the file named by r.URL.Path (mount the Server with
// [http.StripPrefix] to serve it under a prefix). Only GET and HEAD are
// allowed; other methods get 405 with an Allow header.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.problem(w, r, problem.Details{Status: http.StatusMethodNotAllowed})
		return
	}
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	if s.index != "" && strings.HasSuffix(upath, "/"+s.index) {
		localRedirect(w, r, "./")
		return
	}
	name, ok := cleanPath(upath)
	if !ok {
		s.notFound.ServeHTTP(w, r)
		return
	}
	for range maxAttempts {
		if err := s.serve(w, r, upath, name); err != errStale {
			return
		}
	}
	s.unsettled.Report(r.Context(), errStale, slog.String(reqlog.KeyPath, r.URL.Path))
	w.Header().Set("Retry-After", "1")
	s.problem(w, r, problem.Details{Status: http.StatusServiceUnavailable})
}

// serve answers the request once: the file, a redirect, not found or a
// server error. It returns errStale, having written nothing, when the
// file changed under it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, upath, name string) error {
	e, redirect, err := s.resolve(upath, name)
	switch {
	case err == errStale:
		return err
	case err != nil:
		s.serverError(w, r, err)
	case redirect != "":
		localRedirect(w, r, redirect)
	case e == nil:
		s.notFound.ServeHTTP(w, r)
	default:
		return s.serveEntry(w, r, e)
	}
	return nil
}

// resolve finds what a request path names: the directory's index file,
// the file itself, a redirect between the two forms of a name (the
// relative target), or the SPA fallback; nothing (nil, "") when none of
// them exists.
func (s *Server) resolve(upath, name string) (*entry, string, error) {
	dirRequest := strings.HasSuffix(upath, "/")
	if dirRequest && s.index != "" {
		if e, err := s.lookup(path.Join(name, s.index)); err != nil || (e != nil && !e.dir) {
			return e, "", err
		}
	}
	e, err := s.lookup(name)
	switch {
	case err != nil:
		return nil, "", err
	case e == nil:
	case e.dir && !dirRequest:
		return nil, path.Base(upath) + "/", nil
	case !e.dir && dirRequest:
		return nil, "../" + path.Base(name), nil
	case !e.dir:
		return e, "", nil
	}
	if s.spa != "" && (name == "." || path.Ext(path.Base(name)) == "") {
		if e, err := s.lookup(s.spa); err != nil || (e != nil && !e.dir) {
			return e, "", err
		}
	}
	return nil, "", nil
}

// lookup returns the cached entry for name, or nil when the name has
// nothing to serve (missing, hidden, not a regular file or directory, no
// permission: a 404, whatever the reason). The entry is built when it is
// missing, and built again when it no longer matches the file system
// (checked at most every s.revalidate); files sent from disk are checked
// again by open. The error is errStale for a file that changed while it
// was read, or a server error (isServerError).
func (s *Server) lookup(name string) (*entry, error) {
	e := s.cache.get(name)
	s.metrics.looked(e != nil)
	if e == nil {
		e = s.claim(name, nil)
	} else {
		<-e.ready
	}
	if e.err == nil && !s.immutable && s.changed(e) {
		e = s.claim(name, e)
	}
	switch {
	case e.err == nil:
		return e, nil
	case e.err == errStale || isServerError(e.err):
		return nil, e.err
	}
	return nil, nil
}

// claim returns the entry that replaces stale (nil: no entry yet) for
// name once it is ready: built by this request, or by the one that
// claimed it first.
func (s *Server) claim(name string, stale *entry) *entry {
	e, owner := s.cache.claim(name, stale)
	if owner {
		s.build(e)
	}
	<-e.ready
	return e
}

// changed reports, at most every s.revalidate, whether e no longer
// matches the file system: a directory that is not one any more, a file
// whose size or modification time changed, or precompressed variants that
// appeared, vanished or changed. The request that claims a check makes
// it; concurrent ones keep using e meanwhile.
func (s *Server) changed(e *entry) bool {
	now := s.now().UnixNano()
	last := e.checked.Load()
	if now-last < int64(s.revalidate) || !e.checked.CompareAndSwap(last, now) {
		return false
	}
	if e.dir {
		fi, err := fs.Stat(s.fsys, e.name)
		return err != nil || !fi.IsDir()
	}
	if fi, err := fs.Stat(s.fsys, e.name); err != nil || !e.file.sameAs(fi) {
		return true // rebuilt: a server error is reported then
	}
	for c := brotli; c < numCodings; c++ {
		fi, err := fs.Stat(s.fsys, e.name+variantSuffix[c])
		v := e.variants[c]
		switch {
		case err != nil:
			if v != nil && !isServerError(err) {
				return true
			}
		case v == nil:
			if fi.Mode().IsRegular() {
				return true
			}
		case !v.sameAs(fi):
			return true
		}
	}
	return false
}

// build fills e from the file system and publishes it.
func (s *Server) build(e *entry) {
	defer s.cache.finish(e)
	e.checked.Store(s.now().UnixNano())
	fi, err := fs.Stat(s.fsys, e.name)
	if err != nil {
		e.err = err
		return
	}
	if fi.IsDir() {
		e.dir = true
		return
	}
	var head []byte
	if e.file, head, err = s.read(e.name, ""); err != nil {
		e.err = err
		return
	}
	e.mem = int64(len(e.file.data))
	ctype := mime.TypeByExtension(path.Ext(e.name))
	if ctype == "" {
		ctype = http.DetectContentType(head)
	}
	e.ctypeH, e.cacheH = []string{ctype}, []string{cacheControl(s.rules, e.name)}
	for c := brotli; c < numCodings; c++ {
		v, _, err := s.read(e.name+variantSuffix[c], etagSuffix[c])
		if err == errStale {
			e.err = err // read again, with the file, from the top
			return
		}
		if err != nil {
			if isServerError(err) {
				s.errs.Report(context.Background(), err, slog.String("file", e.name+variantSuffix[c]))
			}
			continue
		}
		e.variants[c] = v
		e.mem += int64(len(v.data))
		e.offer.precompressed[c] = true
		e.vary = true
	}
	if s.gzip != nil && e.file.size > 0 && compressible(ctype) {
		e.offer.onTheFly = true
		e.offer.small = e.file.size < minCompressSize
		e.vary = true
		tag := strings.Trim(e.file.etagH[0], `"`)
		e.weakETags[gzipCoding] = `W/"` + tag + `-gzip"`
		e.weakETags[zstandard] = `W/"` + tag + `-zstd"`
	}
}

// read reads and hashes a regular file, keeping its content in memory when
// the budget allows. It also returns the first 512 bytes, for content
// type detection. A file that changes while it is read (shorter or longer
// than its size, or a new size or time at the end) is errStale.
func (s *Server) read(name, etagSuffix string) (_ *rep, head []byte, err error) {
	if hidden, err := throughHidden(s.fsys, name); err != nil || hidden {
		if err == nil {
			err = &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return nil, nil, err
	}
	f, fi, err := s.openRegular(name)
	if err == errNotRegular {
		err = &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	size := fi.Size()
	h := sha256.New()
	var data []byte
	if s.cache.reserve(size) {
		defer func() {
			if err != nil {
				s.cache.mem.Add(-size)
			}
		}()
		data = make([]byte, size)
		if _, err := io.ReadFull(f, data); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return nil, nil, errStale
			}
			return nil, nil, err
		}
		h.Write(data)
		head = data[:min(len(data), 512)]
	} else {
		hw := &headWriter{}
		n, err := io.Copy(io.MultiWriter(h, hw), io.LimitReader(f, size))
		if err != nil {
			return nil, nil, err
		}
		if n != size {
			return nil, nil, errStale
		}
		head = hw.b
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 { // it grew
		return nil, nil, errStale
	}
	fi2, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi2.Size() != size || !fi2.ModTime().Equal(fi.ModTime()) {
		return nil, nil, errStale
	}
	return newRep(name, fi, h.Sum(nil), etagSuffix, data), head, nil
}

// headWriter keeps the first 512 bytes written to it.
type headWriter struct{ b []byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if n := 512 - len(w.b); n > 0 {
		w.b = append(w.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// etagText is the opaque part of an ETag: 128 bits of the SHA-256 of the
// content, base64url. The same bytes give the same ETag in every process,
// so the workers of a cluster agree.
func etagText(sum []byte) string {
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// content is an opened representation.
type content struct {
	data []byte            // in memory, or
	file io.ReadSeekCloser // on disk (close it)
}

// readSeeker returns the content for http.ServeContent.
func (c *content) readSeeker() io.ReadSeeker {
	if c.data != nil {
		return bytes.NewReader(c.data)
	}
	return c.file
}

func (c *content) close() {
	if c.file != nil {
		c.file.Close()
	}
}

// openRegular opens name for reading when it is a regular file and
// returns it with its fstat information; errNotRegular otherwise (a FIFO,
// socket, device or directory). It is the only way the Server opens a
// file, and it must not block: open(2) of a FIFO waits for a writer, with
// no deadline and no cancellation, holding an OS thread meanwhile.
//
// A [Dir] opens with O_NONBLOCK and checks the descriptor. Any other
// fs.FS has no way to pass the flag, so the name is stat'ed first and
// only a regular file is opened; a FIFO renamed over it between the stat
// and the open still blocks that one request. An embed.FS has no FIFOs.
func (s *Server) openRegular(name string) (fs.File, fs.FileInfo, error) {
	if s.dir != nil {
		f, fi, err := s.dir.openRegular(name)
		if err != nil {
			return nil, nil, err // not a nil *os.File in a non-nil fs.File
		}
		return f, fi, nil
	}
	if !s.immutable {
		fi, err := fs.Stat(s.fsys, name)
		if err != nil {
			return nil, nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, nil, errNotRegular
		}
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// open returns the content of r. Content in memory was checked by lookup;
// a file on disk is checked on every open, with fstat on the opened file,
// to be the one that was hashed: errStale otherwise, and for a file that
// is gone (the request is resolved again, and finds out what is there
// now).
func (s *Server) open(r *rep) (content, error) {
	if r.data != nil {
		return content{data: r.data}, nil
	}
	f, fi, err := s.openRegular(r.name)
	if err != nil {
		if isServerError(err) {
			return content{}, err
		}
		return content{}, errStale
	}
	if !r.sameAs(fi) {
		f.Close()
		return content{}, errStale
	}
	rsc, ok := f.(io.ReadSeekCloser)
	if !ok {
		f.Close()
		return content{}, errors.New("static: file " + strconv.Quote(r.name) + " does not implement io.Seeker")
	}
	return content{file: rsc}, nil
}

// conditionalHeaders are the request fields that http.ServeContent
// evaluates; a request without any of them always gets the whole file.
var conditionalHeaders = [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

func isConditional(h http.Header) bool {
	for _, k := range conditionalHeaders {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// serveEntry negotiates the encoding and sends the file e. It returns
// errStale, having written nothing, when the file on disk is no longer
// the one that was cached (e is dropped from the cache then).
func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request, e *entry) error {
	a := parseAcceptEncoding(r.Header["Accept-Encoding"])
	ch := negotiate(&a, &e.offer)
	if !ch.acceptable {
		if e.vary {
			addVary(w.Header())
		}
		s.problem(w, r, problem.Details{Status: http.StatusNotAcceptable})
		return nil
	}
	rp := e.file
	if ch.coding != identity && !ch.onTheFly {
		rp = e.variants[ch.coding]
	}
	c, err := s.open(rp)
	if err == errStale {
		s.cache.drop(e)
		return err
	}
	if err != nil {
		s.serverError(w, r, err)
		return nil
	}
	defer c.close()
	if ch.onTheFly {
		s.sendOnTheFly(w, r, e, ch.coding, &c)
	} else {
		s.send(w, r, e, rp, ch.coding, &c)
	}
	return nil
}

// send sends rp, the file of e as it is or one of its precompressed
// variants (coding cod).
func (s *Server) send(w http.ResponseWriter, r *http.Request, e *entry, rp *rep, cod coding, c *content) {
	h := w.Header()
	h["Content-Type"] = e.ctypeH
	h["Cache-Control"] = e.cacheH
	h["Etag"] = rp.etagH
	if e.vary {
		addVary(h)
	}
	if !isConditional(r.Header) {
		// Nothing to evaluate: the whole file, with headers prepared
		// once. Content-Length keeps the response unchunked, so that a
		// file on disk goes out with sendfile (io.CopyN reaches the
		// connection's io.ReaderFrom with an *os.File).
		if rp.lastModifiedH != nil {
			h["Last-Modified"] = rp.lastModifiedH
		}
		h["Content-Length"] = rp.lengthH
		h["Accept-Ranges"] = s.acceptRangesH
		if cod != identity {
			h["Content-Encoding"] = encodingH[cod]
		}
		w.WriteHeader(http.StatusOK)
		s.metrics.sent(r.Context(), cod, http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		if c.data != nil {
			_, _ = w.Write(c.data)
		} else {
			_, _ = io.CopyN(w, c.file, rp.size)
		}
		return
	}
	var hook *statusHook
	if cod != identity || s.maxRanges == 0 || s.metrics.recording(r.Context()) {
		// ServeContent omits Content-Length when Content-Encoding is
		// set (it expects on-the-fly compression), so the coding is
		// added only once the status is known to carry the variant's
		// bytes. It also always says "Accept-Ranges: bytes". The hook
		// also tells the metrics a 304 from a 200, only when they are
		// recorded: it costs an allocation.
		hook = &statusHook{encoding: encodingH[cod], acceptRanges: s.acceptRangesH}
		w = hookStatus(w, hook)
	}
	http.ServeContent(w, s.servableRange(r), "", rp.modTime, c.readSeeker())
	if hook != nil {
		s.metrics.sent(r.Context(), cod, hook.status)
	}
}

// sendOnTheFly compresses the file of e with gzhttp (coding gzip or
// zstd). Ranges are not served for compressed responses (the compressed
// bytes are not stable), so Range and If-Range are dropped; the weak ETag
// of the coding is set before the conditional headers are evaluated.
func (s *Server) sendOnTheFly(w http.ResponseWriter, r *http.Request, e *entry, cod coding, c *content) {
	h := w.Header()
	h["Content-Type"] = e.ctypeH
	h["Cache-Control"] = e.cacheH
	h.Set("Etag", e.weakETags[cod])

	// gzhttp negotiates again from Accept-Encoding; give it exactly the
	// decision made here, and ServeContent only the validators.
	oc := &onTheFly{modTime: e.file.modTime, file: c.file}
	if c.data != nil {
		oc.mem.Reset(c.data)
	}
	inner := r.WithContext(context.WithValue(r.Context(), onTheFlyKey{}, oc))
	inner.Header = make(http.Header, 4)
	inner.Header["Accept-Encoding"] = encodingH[cod]
	for _, k := range conditionalHeaders[1:] {
		if v, ok := r.Header[k]; ok {
			inner.Header[k] = v
		}
	}
	s.metrics.sent(r.Context(), cod, http.StatusOK)
	if r.Method == http.MethodHead {
		// gzhttp does not compress HEAD responses; send the headers the
		// GET response would have.
		addVary(h)
		w = hookStatus(w, &statusHook{encoding: encodingH[cod], dropLength: true})
		http.ServeContent(w, inner, "", oc.modTime, oc.content())
		return
	}
	s.gzip.ServeHTTP(w, inner)
}

// onTheFlyKey is the context key of the *onTheFly a request for
// on-the-fly compression carries to serveCompressed.
type onTheFlyKey struct{}

// onTheFly is the content serveCompressed sends: the file's bytes in
// memory (mem), or the opened file.
type onTheFly struct {
	modTime time.Time
	file    io.ReadSeeker // nil: mem
	mem     bytes.Reader
}

func (o *onTheFly) content() io.ReadSeeker {
	if o.file != nil {
		return o.file
	}
	return &o.mem
}

// serveCompressed is the handler behind the Server's gzhttp wrapper,
// built once in New: it sends the content sendOnTheFly put in the
// request's context.
func serveCompressed(w http.ResponseWriter, r *http.Request) {
	oc := r.Context().Value(onTheFlyKey{}).(*onTheFly)
	http.ServeContent(w, r, "", oc.modTime, oc.content())
}

// statusHook sets the response headers that depend on the status
// http.ServeContent chooses, just before it writes the status line. It is
// not a general response wrapper: it only ever stands between the Server
// and ServeContent, which uses no optional interface of the writer but
// io.ReaderFrom (the sendfile path), kept when the writer has it; Unwrap
// lets http.ResponseController through. (internal/respwriter records a
// response after the fact and has no hook before the status line.)
type statusHook struct {
	http.ResponseWriter
	encoding     []string // Content-Encoding of a 200 or 206 (nil: none)
	acceptRanges []string // Accept-Ranges of a 200 or 206 (nil: none)
	dropLength   bool     // no Content-Length on a 200 or 206 (a HEAD of what gzhttp would compress)
	wrote        bool
	status       int // the first final status written, for the metrics
}

// hookStatus returns h wrapped around w, with io.ReaderFrom when w has it.
func hookStatus(w http.ResponseWriter, h *statusHook) http.ResponseWriter {
	h.ResponseWriter = w
	if _, ok := w.(io.ReaderFrom); ok {
		return statusHookRF{h}
	}
	return h
}

func (h *statusHook) WriteHeader(code int) {
	if !h.wrote && code >= 200 {
		h.wrote, h.status = true, code
		if code == http.StatusOK || code == http.StatusPartialContent {
			hd := h.Header()
			if h.encoding != nil {
				hd["Content-Encoding"] = h.encoding
			}
			if h.dropLength {
				delete(hd, "Content-Length")
			}
			if h.acceptRanges != nil {
				hd["Accept-Ranges"] = h.acceptRanges
			} else {
				delete(hd, "Accept-Ranges")
			}
		}
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *statusHook) Write(p []byte) (int, error) {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(p)
}

func (h *statusHook) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// statusHookRF is a statusHook with io.ReaderFrom.
type statusHookRF struct{ *statusHook }

func (h statusHookRF) ReadFrom(src io.Reader) (int64, error) {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
}

// servableRange decides whether http.ServeContent sees the Range header
// of r. It drops (on a copy of r) a Range whose unit is not bytes, which
// RFC 9110 (section 14.2) says to ignore where ServeContent answers 416,
// and one that lists more ranges than s.maxRanges: ServeContent would
// build a multipart response of every one, and ignores only ranges that
// add up to more than the file. If-Range goes with it: without Range it
// means nothing, and the answer is the whole file either way.
func (s *Server) servableRange(r *http.Request) *http.Request {
	v := r.Header.Get("Range") // the field ServeContent reads
	if v == "" {
		return r
	}
	if set, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes="); ok && !tooManyRanges(set, s.maxRanges) {
		return r
	}
	r2 := &http.Request{}
	*r2 = *r
	r2.Header = r.Header.Clone()
	r2.Header.Del("Range")
	r2.Header.Del("If-Range")
	return r2
}

// tooManyRanges reports whether a range set (a Range value after
// "bytes=") lists more than limit ranges. It counts the non-empty list
// elements, as ServeContent parses them, stopping at limit+1: a scan
// without allocation, where ServeContent allocates for every range
// before it counts them.
func tooManyRanges(set string, limit int) bool {
	n := 0
	for set != "" {
		var elem string
		elem, set, _ = strings.Cut(set, ",")
		if strings.Trim(elem, " \t\r\n") == "" { // as textproto.TrimString
			continue
		}
		if n++; n > limit {
			return true
		}
	}
	return false
}

// Shared header values (len == cap: an Add elsewhere copies, it never
// writes into them).
var (
	bytesH    = []string{"bytes"}
	noneH     = []string{"none"}
	varyH     = []string{"Accept-Encoding"}
	encodingH = [numCodings][]string{nil, {"br"}, {"zstd"}, {"gzip"}}
)

func addVary(h http.Header) {
	vs := h["Vary"]
	if len(vs) == 0 {
		h["Vary"] = varyH
		return
	}
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return
			}
		}
	}
	h.Add("Vary", "Accept-Encoding")
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.errs.Report(r.Context(), err, slog.String(reqlog.KeyPath, r.URL.Path))
	s.problem(w, r, problem.Details{Status: http.StatusInternalServerError})
}

// localRedirect redirects with a relative Location, which keeps working
// under http.StripPrefix.
func localRedirect(w http.ResponseWriter, r *http.Request, target string) {
	u := url.URL{Path: target, RawQuery: r.URL.RawQuery}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusMovedPermanently)
}

// compressible reports whether a Content-Type is worth compressing: text
// and text-like formats. Images (except SVG, icons and bitmaps), audio,
// video, archives, PDFs and woff/woff2 fonts are compressed already.
func compressible(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/javascript", "application/x-javascript", "application/ecmascript",
		"application/json", "application/xml", "application/wasm",
		"application/yaml", "application/x-yaml", "application/toml",
		"application/x-sh", "application/sql", "application/graphql",
		"application/vnd.ms-fontobject", "application/x-font-ttf", "application/x-font-otf",
		"font/ttf", "font/otf", "font/collection",
		"image/x-icon", "image/vnd.microsoft.icon", "image/bmp":
		return true
	}
	return false
}
