package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxKeys is the default cap on the keys a [MemoryStore] tracks.
const DefaultMaxKeys = 1_000_000

// inlineKey is the longest key a MemoryStore keeps verbatim, inside its
// entry (an IPv6 address in text is at most 39 bytes). Longer keys are
// replaced by a 128-bit seeded digest, so that every entry has the same
// small size whatever clients send, and lookups never chase a pointer to
// the key.
const inlineKey = 40

// minKeysPerShard keeps shards from becoming so small that the per-shard cap
// evicts keys long before the store as a whole is full.
const minKeysPerShard = 64

// MemoryStore is a [Store] in the memory of one process: right for a single
// instance, and the fallback of redisstore. It is safe for concurrent use.
//
// Keys are spread over up to 256 shards by a seeded hash/maphash, each
// shard with its own mutex, so requests for different keys rarely wait on
// each other and never on a store-wide lock. Lookups compare the full key
// (keys over 40 bytes are compared by a 128-bit digest under secret random
// seeds), so two clients never share a counter through a hash collision.
// A take on a key that already exists does not allocate; each tracked key
// costs about 130 bytes.
//
// There is no background goroutine and nothing to close: windows that have
// expired are reset when their key is next seen, and removed when a shard
// needs room. The number of tracked keys is capped (WithMaxKeys, default
// 1,000,000). When a new key arrives at a full shard, the store first
// removes every key whose windows have both ended (their count is zero
// anyway); if none has, it evicts the least recently active of 8 keys
// sampled at random from that shard. An evicted key starts again from
// zero: size the cap above the number of clients active within two windows
// so that only idle keys are ever evicted. A client that keeps sending is
// recently active and is not the one evicted.
type MemoryStore struct {
	seed   maphash.Seed
	seed2  maphash.Seed // second, independent hash for the digest of long keys
	shards []memShard
	mask   uint64
	perCap int
}

type memShard struct {
	mu sync.Mutex
	m  map[uint64]memEntry
	// over holds the rare entries whose 64-bit hash is already taken by
	// another key, by name + "\x00" + key.
	over map[string]*memEntry
	// nextSweep is the earliest time (Unix ns) at which any entry of the
	// shard can have expired: sweeping earlier cannot free anything.
	nextSweep int64
	_         [32]byte // keep shards on separate cache lines
}

type memEntry struct {
	name    string
	kb      [inlineKey]byte // the key (or its digest)
	kn      uint8           // key length in kb
	hashed  bool            // kb holds a digest, not the key
	window  int64           // window length in ns of the last take
	index   int64           // fixed window the counts belong to
	prev    int64
	curr    int64
	expires int64 // Unix ns when both windows have ended: count is zero
}

func (e *memEntry) is(name, key string, hashed bool) bool {
	return e.hashed == hashed && int(e.kn) == len(key) && string(e.kb[:e.kn]) == key && e.name == name
}

// MemoryOption configures a [MemoryStore].
type MemoryOption func(*memConfig)

type memConfig struct {
	maxKeys int
}

// WithMaxKeys caps the number of keys the store tracks (default
// [DefaultMaxKeys]); values below 1 keep the default. See [MemoryStore] for
// the eviction rule.
func WithMaxKeys(n int) MemoryOption {
	return func(c *memConfig) {
		if n > 0 {
			c.maxKeys = n
		}
	}
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	cfg := memConfig{maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		o(&cfg)
	}
	shards := 256
	for shards > 1 && cfg.maxKeys/shards < minKeysPerShard {
		shards /= 2
	}
	s := &MemoryStore{
		seed:   maphash.MakeSeed(),
		seed2:  maphash.MakeSeed(),
		shards: make([]memShard, shards),
		mask:   uint64(shards - 1),
		perCap: max(1, cfg.maxKeys/shards),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]memEntry)
	}
	return s
}

// Take implements [Store].
func (s *MemoryStore) Take(ctx context.Context, p Policy, key string, now time.Time, n int) (Window, error) {
	if err := p.Valid(); err != nil {
		return Window{}, err
	}
	hashed := len(key) > inlineKey
	if hashed {
		key = s.digest(key)
	}
	return s.take(p, key, hashed, s.hash(p.Name, key), now, n), nil
}

// take is Take for a key whose hash is h (tests force collisions with it).
func (s *MemoryStore) take(p Policy, key string, hashed bool, h uint64, now time.Time, n int) Window {
	win := int64(p.Window)
	index, elapsed := windowOf(now, p.Window)
	nowNs := now.UnixNano()

	sh := &s.shards[h&s.mask]
	sh.mu.Lock()
	var e memEntry
	var ep *memEntry // the entry in over, when it lives there
	v, found := sh.m[h]
	switch {
	case found && v.is(p.Name, key, hashed):
		e = v
	case len(sh.over) > 0 && sh.over[overKey(p.Name, key, hashed)] != nil:
		ep = sh.over[overKey(p.Name, key, hashed)]
		e = *ep
	default:
		// A new key. When its hash is taken by another key it goes to
		// over; a slot in m may also be freed by the sweep, so look again.
		sh.makeRoom(s.perCap, nowNs)
		if _, taken := sh.m[h]; taken {
			ep = new(memEntry)
			if sh.over == nil {
				sh.over = make(map[string]*memEntry)
			}
			sh.over[overKey(p.Name, key, hashed)] = ep
		}
		e = memEntry{name: p.Name, hashed: hashed}
		e.kn = uint8(copy(e.kb[:], key))
	}
	switch {
	case e.window != win:
		// A new entry, or the policy's window changed for this key: old
		// counts are not comparable, start over.
		e.window, e.index, e.prev, e.curr = win, index, 0, 0
	case index == e.index:
	case index == e.index+1:
		e.index, e.prev, e.curr = index, e.curr, 0
	case index > e.index:
		e.index, e.prev, e.curr = index, 0, 0
	default:
		// now is before the key's current window (a caller's clock went
		// back, or AllowN with an older time): count it in the newest
		// window, at its start, rather than rewriting history.
		elapsed = 0
	}
	w := Window{Previous: e.prev, Current: e.curr, Elapsed: elapsed}
	if p.Fits(e.prev, e.curr, elapsed, n) {
		e.curr += int64(n)
		w.Current = e.curr
		w.Allowed = true
	}
	if e.curr > 0 {
		e.expires = (e.index + 2) * win
	} else {
		e.expires = (e.index + 1) * win
	}
	sh.nextSweep = min(sh.nextSweep, e.expires)
	if ep != nil {
		*ep = e
	} else {
		sh.m[h] = e
	}
	sh.mu.Unlock()
	return w
}

func overKey(name, key string, hashed bool) string {
	flag := "\x00"
	if hashed {
		flag = "\x01"
	}
	return name + flag + key
}

// Len is the number of keys the store tracks now.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.len()
		sh.mu.Unlock()
	}
	return n
}

func (sh *memShard) len() int { return len(sh.m) + len(sh.over) }

func (s *MemoryStore) hash(name, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(name)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64()
}

// digest replaces a long key by two independent seeded 64-bit hashes; the
// entry is marked hashed, so a short key with the same 16 bytes is still a
// different key.
func (s *MemoryStore) digest(key string) string {
	a := maphash.String(s.seed, key)
	b := maphash.String(s.seed2, key)
	var buf [16]byte
	for i := range 8 {
		buf[i] = byte(a >> (8 * i))
		buf[8+i] = byte(b >> (8 * i))
	}
	return string(buf[:])
}

// makeRoom frees a place for a new entry when the shard is full: first by
// sweeping expired entries (only when one can have expired), else by
// evicting one. The caller holds sh.mu.
func (sh *memShard) makeRoom(perCap int, nowNs int64) {
	if sh.len() < perCap {
		return
	}
	if nowNs >= sh.nextSweep {
		sh.sweep(nowNs)
	}
	if sh.len() >= perCap {
		sh.evictOne()
	}
}

// sweep removes every entry whose windows have both ended and records when
// the next one can end. The caller holds sh.mu.
func (sh *memShard) sweep(nowNs int64) {
	next := int64(1<<63 - 1)
	for h, e := range sh.m {
		if e.expires <= nowNs {
			delete(sh.m, h)
		} else {
			next = min(next, e.expires)
		}
	}
	for k, e := range sh.over {
		if e.expires <= nowNs {
			delete(sh.over, k)
		} else {
			next = min(next, e.expires)
		}
	}
	sh.nextSweep = next
}

// evictOne removes the least recently active of up to 8 entries sampled
// from the shard (map iteration starts at a random position). The caller
// holds sh.mu.
func (sh *memShard) evictOne() {
	if len(sh.over) > 0 { // rare: evict from the overflow first, it is small
		for k := range sh.over {
			delete(sh.over, k)
			return
		}
	}
	var victim uint64
	oldest := int64(1<<63 - 1)
	seen := 0
	for h, e := range sh.m {
		if e.expires < oldest {
			victim, oldest = h, e.expires
		}
		if seen++; seen == 8 {
			break
		}
	}
	delete(sh.m, victim)
}
