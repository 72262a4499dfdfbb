package static

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
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

	"github.com/felixge/httpsnoop"
	"github.com/klauspost/compress/gzhttp"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/problem"
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
	gzip      func(http.Handler) http.HandlerFunc // nil: no on-the-fly compression
	cache     *cache
	errs      *errlog.Reporter
	now       func() time.Time
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
// returns an error for an invalid option or a missing SPA fallback file.
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
	cfg := config{index: "index.html", compress: true, revalidate: defaultRevalidate, maxRanges: defaultMaxRanges}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	s := &Server{
		fsys:     fsys,
		rules:    cfg.rules,
		index:    cfg.index,
		spa:      cfg.spa,
		notFound: cfg.notFound,
		cache:    newCache(),
		errs:     errlog.New(nil, "static: file system error", 0),
		now:      time.Now,

		revalidate:    cfg.revalidate,
		maxRanges:     cfg.maxRanges,
		acceptRangesH: bytesH,
	}
	if s.maxRanges == 0 {
		s.acceptRangesH = noneH
	}
	switch fsys := fsys.(type) {
	case embed.FS, *embed.FS:
		s.immutable = true
	case *dirFS:
		s.dir = fsys
	}
	if s.notFound == nil {
		s.notFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, problem.Details{Status: http.StatusNotFound})
		})
	}
	if s.spa != "" {
		if fi, err := fs.Stat(fsys, s.spa); err != nil || !fi.Mode().IsRegular() {
			return nil, errors.New("static: spa fallback " + strconv.Quote(s.spa) + " is not a file in the file system")
		}
	}
	if cfg.compress {
		// The Server decides what to compress before gzhttp sees the
		// response (type and size are known), so gzhttp gets no minimum
		// size and the same type filter. It must not touch the ETag
		// (SuffixETag, DropETag): the ETag of the compressed
		// representation is set before the conditional request is
		// evaluated, otherwise If-None-Match never matches and 304s are
		// lost.
		wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(0), gzhttp.ContentTypeFilter(compressible))
		if err != nil {
			return nil, errors.New("static: gzhttp: " + err.Error())
		}
		s.gzip = wrap
	}
	return s, nil
}

// errStale reports that a cached entry no longer matches the file system;
// the request is resolved again.
var errStale = errors.New("static: stale cache entry")

// ServeHTTP serves the file named by r.URL.Path (mount the Server with
// [http.StripPrefix] to serve it under a prefix). Only GET and HEAD are
// allowed; other methods get 405 with an Allow header.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Write(w, r, problem.Details{Status: http.StatusMethodNotAllowed})
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
	for range 3 {
		if err := s.serve(w, r, upath, name); err != errStale {
			return
		}
	}
	unavailable(w, r)
}

// unavailable answers for a file that changes faster than it can be read
// (a log being written in place, most likely), rather than loop.
func unavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	problem.Write(w, r, problem.Details{Status: http.StatusServiceUnavailable})
}

// serve resolves name (directory index, redirects, SPA fallback) and
// serves what it finds. It returns errStale, having written nothing, when
// the file it was about to send changed since it was cached.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, upath, name string) error {
	dirRequest := strings.HasSuffix(upath, "/")
	if dirRequest && s.index != "" {
		e, err := s.lookup(path.Join(name, s.index))
		if err == nil && !e.dir {
			return s.serveEntry(w, r, e)
		}
		if s.failed(w, r, err) {
			return nil
		}
	}
	e, err := s.lookup(name)
	switch {
	case err == nil && e.dir && !dirRequest:
		localRedirect(w, r, path.Base(upath)+"/")
		return nil
	case err == nil && !e.dir && dirRequest:
		localRedirect(w, r, "../"+path.Base(name))
		return nil
	case err == nil && !e.dir:
		return s.serveEntry(w, r, e)
	}
	if s.failed(w, r, err) {
		return nil
	}
	if s.spa != "" && (name == "." || path.Ext(path.Base(name)) == "") {
		e, err := s.lookup(s.spa)
		if err == nil && !e.dir {
			return s.serveEntry(w, r, e)
		}
		if s.failed(w, r, err) {
			return nil
		}
	}
	s.notFound.ServeHTTP(w, r)
	return nil
}

// failed answers a lookup error that is not "not found": 500 for a server
// error, 503 for a file that kept changing (lookup and read have retried
// already; retrying the request would read it again for nothing). It
// reports whether the request is done.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == errStale || err == errChanged:
		unavailable(w, r)
		return true
	case err != nil && isServerError(err):
		s.serverError(w, r, err)
		return true
	}
	return false
}

// lookup returns the cached entry for name, building it when missing or
// when it no longer matches the file system. Files sent from disk are
// checked again by open.
func (s *Server) lookup(name string) (*entry, error) {
	e := s.cache.get(name)
	for range 3 {
		if e == nil {
			var owner bool
			if e, owner = s.cache.claim(name, nil); owner {
				s.build(e)
			}
		}
		<-e.ready
		if e.err != nil {
			return nil, e.err
		}
		if s.immutable || !s.changed(e) {
			return e, nil
		}
		var owner bool
		if e, owner = s.cache.claim(name, e); owner {
			s.build(e)
		}
	}
	return nil, errStale
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
// type detection.
func (s *Server) read(name, etagSuffix string) (*rep, []byte, error) {
	for range 3 {
		r, head, err := s.readOnce(name, etagSuffix)
		if err != errChanged {
			return r, head, err
		}
	}
	return nil, nil, errChanged
}

func (s *Server) readOnce(name, etagSuffix string) (_ *rep, head []byte, err error) {
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
				return nil, nil, errChanged
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
			return nil, nil, errChanged
		}
		head = hw.b
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 { // it grew
		return nil, nil, errChanged
	}
	fi2, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi2.Size() != size || !fi2.ModTime().Equal(fi.ModTime()) {
		return nil, nil, errChanged
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
// to be the one that was hashed (errStale otherwise).
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

// serveEntry negotiates the encoding and sends the file e.
func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request, e *entry) error {
	a := parseAcceptEncoding(r.Header["Accept-Encoding"])
	ch := negotiate(&a, &e.offer)
	if !ch.acceptable {
		if e.vary {
			addVary(w.Header())
		}
		problem.Write(w, r, problem.Details{Status: http.StatusNotAcceptable})
		return nil
	}
	if ch.onTheFly {
		return s.serveOnTheFly(w, r, e, ch.coding)
	}
	rp := e.file
	if ch.coding != identity {
		rp = e.variants[ch.coding]
	}
	c, err := s.open(rp)
	if err != nil {
		if err == errStale {
			s.cache.drop(e)
			return errStale
		}
		s.serverError(w, r, err)
		return nil
	}
	defer c.close()

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
		if ch.coding != identity {
			h["Content-Encoding"] = encodingH[ch.coding]
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return nil
		}
		if c.data != nil {
			_, _ = w.Write(c.data)
		} else {
			_, _ = io.CopyN(w, c.file, rp.size)
		}
		return nil
	}
	if ch.coding != identity || s.maxRanges == 0 {
		// ServeContent omits Content-Length when Content-Encoding is
		// set (it expects on-the-fly compression), so the coding is
		// added only once the status is known to carry the variant's
		// bytes. It also always says "Accept-Ranges: bytes".
		cod := ch.coding
		w = httpsnoop.Wrap(w, httpsnoop.Hooks{WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				if cod != identity && (code == http.StatusOK || code == http.StatusPartialContent) {
					h["Content-Encoding"] = encodingH[cod]
				}
				if _, ok := h["Accept-Ranges"]; ok {
					h["Accept-Ranges"] = s.acceptRangesH
				}
				next(code)
			}
		}})
	}
	http.ServeContent(w, s.servableRange(r), "", rp.modTime, c.readSeeker())
	return nil
}

// serveOnTheFly compresses e with gzhttp (coding gzip or zstd). Ranges are
// not served for compressed responses (the compressed bytes are not
// stable), so Range and If-Range are dropped; the weak ETag of the coding
// is set before the conditional headers are evaluated.
func (s *Server) serveOnTheFly(w http.ResponseWriter, r *http.Request, e *entry, cod coding) error {
	c, err := s.open(e.file)
	if err != nil {
		if err == errStale {
			s.cache.drop(e)
			return errStale
		}
		s.serverError(w, r, err)
		return nil
	}
	defer c.close()

	// gzhttp negotiates again from Accept-Encoding; give it exactly the
	// decision made here, and ServeContent only the validators.
	inner := &http.Request{}
	*inner = *r
	inner.Header = make(http.Header, 4)
	inner.Header.Set("Accept-Encoding", codingName[cod])
	for _, k := range conditionalHeaders[1:] {
		if v, ok := r.Header[k]; ok {
			inner.Header[k] = v
		}
	}

	etag := e.weakETags[cod]
	h := w.Header()
	h["Content-Type"] = e.ctypeH
	h["Cache-Control"] = e.cacheH
	h.Set("Etag", etag)
	if r.Method == http.MethodHead {
		// gzhttp does not compress HEAD responses; send the headers the
		// GET response would have.
		addVary(h)
		w = httpsnoop.Wrap(w, httpsnoop.Hooks{WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				if code == http.StatusOK {
					h.Set("Content-Encoding", codingName[cod])
					h.Del("Content-Length")
					h.Del("Accept-Ranges")
				}
				next(code)
			}
		}})
		http.ServeContent(w, inner, "", e.file.modTime, c.readSeeker())
		return nil
	}
	s.gzip(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", e.file.modTime, c.readSeeker())
	})).ServeHTTP(w, inner)
	return nil
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
	s.errs.Report(r.Context(), err, slog.String("url.path", r.URL.Path))
	problem.Write(w, r, problem.Details{Status: http.StatusInternalServerError})
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
