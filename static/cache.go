package static

import (
	"io/fs"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Cache bounds. A file up to maxMemFile bytes is kept in memory while the
// total stays under maxMemTotal: sending it is one write, where a file on
// disk costs open, fstat, write, sendfile and close. Larger files are
// sent from disk with sendfile. Metadata (content hash, type, variants)
// is kept for up to maxEntries files; past that, random entries are
// dropped and hashed again when requested.
const (
	defaultMaxEntries  = 16384
	defaultMaxMemFile  = 64 << 10
	defaultMaxMemTotal = 32 << 20
	// defaultRevalidate is the default of WithRevalidate.
	defaultRevalidate = time.Second
)

// rep is one stored representation: a file as it is, or one of its
// precompressed variants.
type rep struct {
	name    string // path in the file system
	size    int64
	modTime time.Time
	data    []byte // the whole content when kept in memory

	// Header values prepared once, assigned to response headers without
	// allocating (each has len == cap, so an Add elsewhere copies).
	etagH         []string // strong, quoted
	lastModifiedH []string // nil for a zero modification time
	lengthH       []string
}

// sameAs reports whether fi still describes the file r was read from.
func (r *rep) sameAs(fi fs.FileInfo) bool {
	return fi.Mode().IsRegular() && fi.Size() == r.size && fi.ModTime().Equal(r.modTime)
}

func newRep(name string, fi fs.FileInfo, sum []byte, suffix string, data []byte) *rep {
	r := &rep{
		name:    name,
		size:    fi.Size(),
		modTime: fi.ModTime(),
		data:    data,
		etagH:   []string{`"` + etagText(sum) + suffix + `"`},
		lengthH: []string{strconv.FormatInt(fi.Size(), 10)},
	}
	if mt := r.modTime; !mt.IsZero() && !mt.Equal(time.Unix(0, 0)) {
		r.lastModifiedH = []string{mt.UTC().Format(http.TimeFormat)}
	}
	return r
}

// entry is what the Server knows about one name: a directory, or a
// regular file with its variants. Fields are immutable once ready is
// closed, except checked.
type entry struct {
	ready chan struct{}
	err   error // set before ready is closed

	name string
	dir  bool

	file      *rep               // identity
	variants  [numCodings]*rep   // precompressed; nil when absent
	ctypeH    []string           // Content-Type of the identity, as a header value
	cacheH    []string           // Cache-Control from the rules and defaults, as a header value
	weakETags [numCodings]string // on-the-fly gzip and zstd
	offer     offer              // what negotiation can pick
	vary      bool               // the response depends on Accept-Encoding
	mem       int64              // bytes of data kept in memory
	checked   atomic.Int64       // unix nanoseconds of the last check against the file system
}

// cache maps names to entries. It is safe for concurrent use; one build
// runs per name at a time and concurrent requests wait for it.
type cache struct {
	maxEntries  int
	maxMemFile  int64
	maxMemTotal int64

	mem atomic.Int64 // bytes reserved for data

	mu      sync.RWMutex
	entries map[string]*entry
}

func newCache() *cache {
	return &cache{
		maxEntries:  defaultMaxEntries,
		maxMemFile:  defaultMaxMemFile,
		maxMemTotal: defaultMaxMemTotal,
		entries:     make(map[string]*entry),
	}
}

func (c *cache) get(name string) *entry {
	c.mu.RLock()
	e := c.entries[name]
	c.mu.RUnlock()
	return e
}

// claim returns the entry to use for name. When the current entry is
// stale (or there is none) it inserts a new one that the caller must
// build (owner true); when another request already replaced it, that
// one is returned.
func (c *cache) claim(name string, stale *entry) (e *entry, owner bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.entries[name]; cur != nil && cur != stale {
		return cur, false
	}
	if stale != nil {
		c.removeLocked(stale)
	}
	e = &entry{name: name, ready: make(chan struct{})}
	c.entries[name] = e
	return e, true
}

// drop removes e if it is still the entry for its name.
func (c *cache) drop(e *entry) {
	c.mu.Lock()
	c.removeLocked(e)
	c.mu.Unlock()
}

// finish publishes a built entry: waiters see it when ready is closed.
// A failed build is not kept (the name may appear later), and the memory
// of an entry evicted while it was being built is given back. Only an
// entry that is kept makes room, by evicting others: requests for missing
// names (a scan, SPA routes) must not flush the cache.
func (c *cache) finish(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(e.ready)
	kept := c.entries[e.name] == e
	if e.err != nil || !kept {
		if kept {
			delete(c.entries, e.name)
		}
		c.mem.Add(-e.mem)
		e.mem = 0
		return
	}
	excess := len(c.entries) - c.maxEntries
	for _, victim := range c.entries { // map order is random enough
		if excess <= 0 {
			break
		}
		if victim != e {
			c.removeLocked(victim)
			excess--
		}
	}
}

func (c *cache) removeLocked(e *entry) {
	if c.entries[e.name] != e {
		return
	}
	delete(c.entries, e.name)
	// The data of a removed entry still being built is released by
	// finish.
	select {
	case <-e.ready:
		c.mem.Add(-e.mem)
		e.mem = 0
	default:
	}
}

// reserve takes n bytes of the memory budget, reporting whether they fit.
func (c *cache) reserve(n int64) bool {
	if n > c.maxMemFile {
		return false
	}
	if c.mem.Add(n) > c.maxMemTotal {
		c.mem.Add(-n)
		return false
	}
	return true
}
