package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// DefaultMaxKeys is the default cap on the keys a [MemoryStore] tracks.
const DefaultMaxKeys = 1_000_000

// inlineKey is the longest key a MemoryStore keeps verbatim, inside its
// slot (an IPv4 address, an IPv6 /64 prefix or a full IPv6 address in text
// fit). Longer keys are replaced by a 128-bit seeded digest, so that every
// slot has the same size whatever clients send, and a lookup never chases
// a pointer to the key.
const inlineKey = 36

// minKeysPerShard keeps shards from becoming so small that the per-shard cap
// evicts keys long before the store as a whole is full.
const minKeysPerShard = 64

// maxPolicies bounds the distinct (name, window) pairs one store serves.
const maxPolicies = math.MaxUint16

// errTooManyPolicies is returned by Take past maxPolicies policies: names
// are meant to be a few constants, not built from requests.
var errTooManyPolicies = errors.New("ratelimit: memory store: more than 65535 distinct policy names and windows")

// MemoryStore is a [Store] in the memory of one process: right for a single
// instance, and the fallback of redisstore. It is safe for concurrent use.
//
// Keys are spread over up to 256 shards by a seeded hash/maphash, each
// shard an open-addressing table with its own mutex, so requests for
// different keys rarely wait on each other and never on a store-wide lock.
// Each key lives in one 64-byte slot that holds its hash, its counts and
// the key itself (keys over 36 bytes as a 128-bit digest under secret
// random seeds), so a lookup usually touches one cache line, compares the
// full key — two clients never share a counter through a hash collision —
// and does not allocate.
//
// There is no background goroutine and nothing to close: windows that have
// expired are reset when their key is next seen, and removed when a shard
// needs room. Take ignores ctx: it never blocks, and the Limiter and
// slowdown.Delayer do not pass on a request whose context is done however
// the take went (see [Store]).
//
// The number of tracked keys is capped (WithMaxKeys, default 1,000,000).
// Each shard's table is a power of two of 64-byte slots kept at most 3/4
// full, so a tracked key costs 85 to 171 bytes; at the default cap a full
// store takes 128 MiB, 134 bytes per key (measured as the heap growth after
// 2,000,000 distinct keys: go test -run TestMemoryStoreBoundedUnderKeyFlood
// -v ./ratelimit).
//
// When a new key arrives at a full shard, the store first removes every key
// whose windows have both ended (their count is zero anyway). If none has,
// it evicts one key, and a key that is being refused (after its last take
// not one more request fitted: it is at or over its limit) is never evicted
// while its shard holds a key that is not: of 8 keys sampled from the
// shard, it evicts the one that is not refused with the fewest requests in
// its trailing window, then the one whose count ends first; when all 8 are
// refused it scans on to the first key that is not. So a flood of fresh
// one-request keys evicts fresh one-request keys, and a client at its limit
// stays refused however many new keys arrive, at any cap. Only a shard in
// which every key is refused loses a refused key (the least counted of the
// sample). The worst case of the scan is one pass over a shard's table
// (8,192 slots, 512 KiB at the default cap: tens of µs under the shard's
// lock), while nearly every key of the shard is refused, which costs
// whoever wants it limit+1 requests per key and window. An evicted key
// starts again from zero: size the cap above the number of clients active
// within two windows so that only idle keys are ever evicted.
//
// Counts saturate at 2³²−1 per fixed window.
type MemoryStore struct {
	seed   maphash.Seed
	seed2  maphash.Seed // second, independent hash for the digest of long keys
	shards []memShard
	mask   uint64
	perCap int
	maxLen int // largest slot table of a shard

	pols  atomic.Pointer[polTable] // copy on write
	polMu sync.Mutex               // serialises writers of pols
}

// polTable numbers the (name, window) pairs the store has seen; a slot
// stores the number instead of the name.
type polTable struct {
	ids     map[polKey]uint16
	keys    []polKey // by id
	windows []int64  // by id
}

type polKey struct {
	name   string
	window time.Duration
}

type memShard struct {
	mu    sync.Mutex
	slots []slot // power-of-two length, or nil
	n     int    // occupied slots
	// nextSweep is the earliest time (Unix ns) at which any entry of the
	// shard can have expired: sweeping earlier cannot free anything.
	nextSweep int64
	_         [16]byte // 64 bytes: shards never share a cache line
}

// slot is one key's state, 64 bytes: one cache line.
type slot struct {
	hash  uint64 // 0: empty
	index int64  // fixed window that cur counts
	prev  uint32 // count of window index-1
	cur   uint32 // count of window index
	pol   uint16
	kn    uint8 // key length in key
	flags uint8 // slotHashed, slotRefused
	key   [inlineKey]byte
}

const (
	// slotHashed: key holds a digest, not the key.
	slotHashed uint8 = 1 << iota
	// slotRefused: after the key's last take not one more request fitted,
	// so its next request is refused. The slot does not know the policy's
	// limit; the take that sees it does, and records the outcome here for
	// eviction.
	slotRefused
	// slotPinned: a TakeAll holds the slot while it makes room for the
	// key's other policies; it is neither evicted nor swept meanwhile.
	slotPinned
)

func (s *slot) is(h uint64, pol uint16, key string, hashed bool) bool {
	return s.hash == h && s.pol == pol && (s.flags&slotHashed != 0) == hashed && int(s.kn) == len(key) && string(s.key[:s.kn]) == key
}

// countsAt returns the slot's previous and current counts as of fixed
// window index, and whether its window is ahead of index (the caller's
// clock went back, or AllowN was given an older time): such a key is
// counted in its own window, at its start, rather than rewriting history.
// A window more than two windows ahead is stale (a clock that jumped ahead
// and came back) and counts nothing, or a key would stay refused until the
// clock caught up.
func (s *slot) countsAt(index int64) (prev, cur uint32, ahead bool) {
	switch {
	case index == s.index:
		return s.prev, s.cur, false
	case index == s.index+1:
		return s.cur, 0, false
	case index > s.index || s.index > index+2:
		return 0, 0, false
	}
	return s.prev, s.cur, true
}

// MemoryOption configures a [MemoryStore].
type MemoryOption func(*memConfig)

type memConfig struct {
	maxKeys int
}

// WithMaxKeys caps the number of keys the store tracks (default
// [DefaultMaxKeys]); n < 1 is an error from [NewMemoryStore]. See
// [MemoryStore] for the eviction rule and the memory per key.
func WithMaxKeys(n int) MemoryOption {
	return func(c *memConfig) { c.maxKeys = n }
}

// NewMemoryStore returns an empty MemoryStore. It returns an error for a
// nil option and for an option given a value it cannot use.
func NewMemoryStore(opts ...MemoryOption) (*MemoryStore, error) {
	cfg := memConfig{maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("ratelimit: NewMemoryStore: nil option")
		}
		o(&cfg)
	}
	if cfg.maxKeys < 1 {
		return nil, fmt.Errorf("ratelimit: WithMaxKeys: %d keys, want > 0", cfg.maxKeys)
	}
	shards := 256
	for shards > 1 && cfg.maxKeys/shards < minKeysPerShard {
		shards /= 2
	}
	perCap := max(1, cfg.maxKeys/shards)
	maxLen := 8
	for maxLen*3/4 < perCap { // keep the load factor at most 3/4
		maxLen *= 2
	}
	s := &MemoryStore{
		seed:   maphash.MakeSeed(),
		seed2:  maphash.MakeSeed(),
		shards: make([]memShard, shards),
		mask:   uint64(shards - 1),
		perCap: perCap,
		maxLen: maxLen,
	}
	s.pols.Store(&polTable{ids: map[polKey]uint16{}})
	return s, nil
}

// Take implements [Store].
func (s *MemoryStore) Take(ctx context.Context, p Policy, key string, now time.Time, n int) (Window, error) {
	if err := p.Valid(); err != nil {
		return Window{}, err
	}
	if n < 0 {
		return Window{}, fmt.Errorf("%w (n=%d)", ErrInvalidN, n)
	}
	pol, err := s.policyID(p)
	if err != nil {
		return Window{}, err
	}
	hashed := len(key) > inlineKey
	var buf [16]byte
	if hashed {
		s.digest(&buf, key)
		// The digest is only compared and copied into a slot during the
		// take, so it can live in buf on the stack: no allocation.
		key = unsafe.String(&buf[0], len(buf))
	}
	// Scalars, not a Window: the compiler moved a returned Window through
	// a stack copy whose wide loads stalled on the narrow stores before
	// them (store forwarding), a third of a hot key's take.
	allowed, prev, cur, elapsed, index := s.takeCounts(p, pol, key, hashed, s.hash(pol, key), now, n)
	return Window{Allowed: allowed, Previous: prev, Current: cur, Elapsed: elapsed, Index: index}, nil
}

// memKey is a key as the store compares it: verbatim, or its digest in
// buf (see inlineKey).
type memKey struct {
	key    string
	hashed bool
	buf    [16]byte
}

// keyOf prepares key for the methods that take several policies. k must
// not be copied afterwards: key may point into k.buf.
func (s *MemoryStore) keyOf(k *memKey, key string) {
	k.key, k.hashed = key, len(key) > inlineKey
	if k.hashed {
		s.digest(&k.buf, key)
		k.key = unsafe.String(&k.buf[0], len(k.buf))
	}
}

// policyIDs numbers ps into ids.
func (s *MemoryStore) policyIDs(ps []Policy, ids *[MaxPolicies]uint16) error {
	for i := range ps {
		id, err := s.policyID(ps[i])
		if err != nil {
			return err
		}
		ids[i] = id
	}
	return nil
}

// TakeAll implements [Store]. Every policy of a key lives in the key's
// shard (the shard is chosen by the key's hash alone), so the take holds
// one lock, and is atomic with respect to every other call on the key.
func (s *MemoryStore) TakeAll(ctx context.Context, ps []Policy, key string, now time.Time, n int, ws []Window) (bool, error) {
	if err := CheckArgs(ps, len(ws), n, 0); err != nil {
		return false, err
	}
	var pols [MaxPolicies]uint16
	if err := s.policyIDs(ps, &pols); err != nil {
		return false, err
	}
	var k memKey
	s.keyOf(&k, key)
	var hs [MaxPolicies]uint64
	for i := range ps {
		hs[i] = s.hash(pols[i], k.key)
	}
	nowNs := now.UnixNano()
	sh := &s.shards[hs[0]&s.mask]
	var index [MaxPolicies]int64
	var elapsed [MaxPolicies]time.Duration
	for i := range ps {
		index[i], elapsed[i] = windowOf(now, ps[i].Window)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Insert what is missing first, each slot pinned so that making room
	// for one policy's slot cannot evict another's; inserting may move
	// slots (growth, eviction's backward shift), so they are found again
	// once all exist.
	for i := range ps {
		j := s.slotFor(sh, hs[i], pols[i], k.key, k.hashed, nowNs, index[i])
		sh.slots[j].flags |= slotPinned
	}
	var at [MaxPolicies]int
	fits := true
	for i := range ps {
		at[i], _ = sh.find(hs[i], pols[i], k.key, k.hashed)
		e := &sh.slots[at[i]]
		e.flags &^= slotPinned
		ws[i] = e.window(index[i], elapsed[i])
		fits = fits && ps[i].Fits(ws[i].Previous, ws[i].Current, ws[i].Elapsed, n)
	}
	for i := range ps {
		e := &sh.slots[at[i]]
		if fits {
			ws[i].Current = e.count(n)
			ws[i].Allowed = true
		}
		sh.settle(e, ps[i], ws[i].Previous, ws[i].Current, ws[i].Elapsed)
	}
	return fits, nil
}

// Refund implements [Store].
func (s *MemoryStore) Refund(ctx context.Context, ps []Policy, key string, n int, ws []Window) error {
	if err := CheckArgs(ps, len(ws), n, 0); err != nil {
		return err
	}
	var pols [MaxPolicies]uint16
	if err := s.policyIDs(ps, &pols); err != nil {
		return err
	}
	var k memKey
	s.keyOf(&k, key)
	for i := range ps {
		if !ws[i].Allowed {
			continue // never counted
		}
		h := s.hash(pols[i], k.key)
		sh := &s.shards[h&s.mask]
		sh.mu.Lock()
		if j, found := sh.find(h, pols[i], k.key, k.hashed); found {
			sh.slots[j].refund(ws[i].Index, n)
		}
		sh.mu.Unlock()
	}
	return nil
}

// Peek implements [Store].
func (s *MemoryStore) Peek(ctx context.Context, ps []Policy, key string, now time.Time, ws []Window) error {
	if err := CheckArgs(ps, len(ws), 0, 0); err != nil {
		return err
	}
	var pols [MaxPolicies]uint16
	if err := s.policyIDs(ps, &pols); err != nil {
		return err
	}
	var k memKey
	s.keyOf(&k, key)
	for i := range ps {
		h := s.hash(pols[i], k.key)
		sh := &s.shards[h&s.mask]
		index, elapsed := windowOf(now, ps[i].Window)
		sh.mu.Lock()
		j, found := sh.find(h, pols[i], k.key, k.hashed)
		w := Window{Elapsed: elapsed, Index: index}
		if found {
			// roll on a copy: a peek changes nothing.
			e := sh.slots[j]
			w = e.window(index, elapsed)
		}
		sh.mu.Unlock()
		w.Allowed = ps[i].Fits(w.Previous, w.Current, w.Elapsed, 1)
		ws[i] = w
	}
	return nil
}

// Reset implements [Store].
func (s *MemoryStore) Reset(ctx context.Context, ps []Policy, key string) error {
	if err := CheckArgs(ps, -1, 0, 0); err != nil {
		return err
	}
	var pols [MaxPolicies]uint16
	if err := s.policyIDs(ps, &pols); err != nil {
		return err
	}
	var k memKey
	s.keyOf(&k, key)
	for i := range ps {
		h := s.hash(pols[i], k.key)
		sh := &s.shards[h&s.mask]
		sh.mu.Lock()
		if j, found := sh.find(h, pols[i], k.key, k.hashed); found {
			sh.deleteAt(j)
		}
		sh.mu.Unlock()
	}
	return nil
}

// policyID returns the number of (p.Name, p.Window), assigning one the
// first time. A store serves a few policies (a limiter and a slowdown
// sharing it, a stricter login limit): they are found by a scan that
// compares names by pointer first, without hashing or allocating.
func (s *MemoryStore) policyID(p Policy) (uint16, error) {
	k := polKey{p.Name, p.Window}
	t := s.pols.Load()
	if len(t.keys) <= 8 {
		for i := range t.keys {
			if t.keys[i] == k {
				return uint16(i), nil
			}
		}
	} else if id, ok := t.ids[k]; ok {
		return id, nil
	}
	s.polMu.Lock()
	defer s.polMu.Unlock()
	t = s.pols.Load()
	if id, ok := t.ids[k]; ok {
		return id, nil
	}
	n := len(t.keys)
	if n >= maxPolicies {
		return 0, errTooManyPolicies
	}
	next := &polTable{
		ids:     make(map[polKey]uint16, n+1),
		keys:    append(t.keys[:n:n], k),
		windows: append(t.windows[:n:n], int64(p.Window)),
	}
	for k, v := range t.ids {
		next.ids[k] = v
	}
	next.ids[k] = uint16(n)
	s.pols.Store(next)
	return uint16(n), nil
}

// take is Take for a key whose hash is h (tests force collisions with it).
func (s *MemoryStore) take(p Policy, pol uint16, key string, hashed bool, h uint64, now time.Time, n int) Window {
	allowed, prev, cur, elapsed, index := s.takeCounts(p, pol, key, hashed, h, now, n)
	return Window{Allowed: allowed, Previous: prev, Current: cur, Elapsed: elapsed, Index: index}
}

// takeCounts is take, returning the Window's fields.
func (s *MemoryStore) takeCounts(p Policy, pol uint16, key string, hashed bool, h uint64, now time.Time, n int) (allowed bool, prev, cur int64, elapsed time.Duration, index int64) {
	// Everything that does not need the lock is computed before it: under
	// a hot key, the time the lock is held is what the cores queue for.
	// Inside, the counts stay in registers (scalars, not a Window passed
	// around: copying a struct just written field by field stalls on
	// store forwarding, which the profile of a hot key showed).
	index, elapsed = windowOf(now, p.Window)
	nowNs := now.UnixNano()
	sh := &s.shards[h&s.mask]
	sh.mu.Lock()
	// slotFor, roll and settle written out: none of them is inlined, and
	// this is the path every request takes.
	i, found := sh.find(h, pol, key, hashed)
	if !found {
		i = s.insert(sh, h, pol, key, hashed, nowNs)
		sh.slots[i].index = index
	}
	e := &sh.slots[i]
	p32, c32, ahead := e.countsAt(index)
	if ahead {
		elapsed, index = 0, e.index
	} else {
		e.index, e.prev, e.cur = index, p32, c32
	}
	prev, cur = int64(p32), int64(c32)
	slid := slidOut(p, prev, elapsed)
	allowed = fits(p, slid, cur, n)
	if allowed {
		cur = e.count(n)
	}
	if fits(p, slid, cur, 1) {
		e.flags &^= slotRefused
	} else {
		e.flags |= slotRefused
	}
	sh.nextSweep = min(sh.nextSweep, expires(e, int64(p.Window)))
	sh.mu.Unlock()
	return allowed, prev, cur, elapsed, index
}

// slidOut and fits split [Policy.Fits] in two, so that a take that checks
// both its own fit and the next request's (for slotRefused) divides once,
// under the shard's lock: fits(p, slidOut(p, prev, elapsed), curr, n) is
// p.Fits(prev, curr, elapsed, n), the same operations in the same order
// (TestFitsSplit).
func slidOut(p Policy, prev int64, elapsed time.Duration) float64 {
	return float64(prev) * float64(p.Window-elapsed) / float64(p.Window)
}

func fits(p Policy, slid float64, curr int64, n int) bool {
	return slid+float64(curr)+float64(n) <= float64(p.Limit)
}

// slotFor returns the index of the key's slot, inserting it (with its
// window at index) when it is missing. The caller holds sh.mu.
func (s *MemoryStore) slotFor(sh *memShard, h uint64, pol uint16, key string, hashed bool, nowNs, index int64) int {
	i, found := sh.find(h, pol, key, hashed)
	if !found {
		i = s.insert(sh, h, pol, key, hashed, nowNs)
		sh.slots[i].index = index
	}
	return i
}

// roll moves the slot's windows forward to the window index, elapsed into
// it (see windowOf), and returns what a take sees there before counting:
// its counts, the time elapsed in the window and the window's index. A
// slot whose window is ahead (see countsAt) is not moved and is seen at
// the start of its own window.
func (e *slot) roll(index int64, elapsed time.Duration) (prev, cur int64, _ time.Duration, _ int64) {
	p32, c32, ahead := e.countsAt(index)
	if ahead {
		elapsed, index = 0, e.index
	} else {
		e.index, e.prev, e.cur = index, p32, c32
	}
	return int64(p32), int64(c32), elapsed, index
}

// window is roll as a Window, for the paths that keep one per policy.
func (e *slot) window(index int64, elapsed time.Duration) Window {
	prev, cur, elapsed, index := e.roll(index, elapsed)
	return Window{Previous: prev, Current: cur, Elapsed: elapsed, Index: index}
}

// count adds n to the current count, saturating, and returns it.
func (e *slot) count(n int) int64 {
	cur := min(int64(e.cur)+int64(n), math.MaxUint32)
	e.cur = uint32(cur)
	return cur
}

// refund gives n back to the window index, if the slot still counts it.
func (e *slot) refund(index int64, n int) {
	sub := func(c uint32) uint32 { return uint32(max(0, int64(c)-int64(n))) }
	switch index {
	case e.index:
		e.cur = sub(e.cur)
	case e.index - 1:
		e.prev = sub(e.prev)
	}
}

// settle records, after a take, whether the key's next request is refused
// (for eviction) and when the shard can next have something to sweep.
func (sh *memShard) settle(e *slot, p Policy, prev, cur int64, elapsed time.Duration) {
	if p.Fits(prev, cur, elapsed, 1) {
		e.flags &^= slotRefused
	} else {
		e.flags |= slotRefused
	}
	sh.nextSweep = min(sh.nextSweep, expires(e, int64(p.Window)))
}

// expires is when (Unix ns) both windows of the slot have ended and its
// count is zero.
func expires(e *slot, window int64) int64 {
	if e.cur > 0 {
		return (e.index + 2) * window
	}
	return (e.index + 1) * window
}

// find returns the slot of the key, or the empty slot where it would go.
// The caller holds sh.mu.
func (sh *memShard) find(h uint64, pol uint16, key string, hashed bool) (int, bool) {
	if sh.slots == nil {
		return -1, false
	}
	mask := len(sh.slots) - 1
	for i := home(h, mask); ; i = (i + 1) & mask {
		e := &sh.slots[i]
		if e.hash == 0 {
			return i, false
		}
		if e.is(h, pol, key, hashed) {
			return i, true
		}
	}
}

// home is the preferred slot of hash h: the high bits, since the low ones
// chose the shard.
func home(h uint64, mask int) int { return int(h>>32) & mask }

// insert makes room for a new key (growing the table, sweeping expired
// keys, or evicting one) and returns the index of its slot, filled with the
// key and zero counts. The caller holds sh.mu.
func (s *MemoryStore) insert(sh *memShard, h uint64, pol uint16, key string, hashed bool, nowNs int64) int {
	switch {
	case sh.n >= s.perCap:
		if nowNs >= sh.nextSweep {
			s.sweep(sh, nowNs)
		}
		if sh.n >= s.perCap {
			s.evictOne(sh, h, nowNs)
		}
		if (sh.n+1)*4 > len(sh.slots)*3 {
			// Nothing could go (every candidate is pinned by a TakeAll):
			// exceed the cap by the few pinned keys rather than fill the
			// table, whose probes need an empty slot.
			sh.rehash(len(sh.slots) * 2)
		}
	case sh.slots == nil:
		sh.slots = make([]slot, 8)
	case (sh.n+1)*4 > len(sh.slots)*3 && len(sh.slots) < s.maxLen:
		sh.rehash(len(sh.slots) * 2)
	}
	i, _ := sh.find(h, pol, key, hashed)
	e := &sh.slots[i]
	*e = slot{hash: h, pol: pol}
	if hashed {
		e.flags = slotHashed
	}
	e.kn = uint8(copy(e.key[:], key))
	sh.n++
	return i
}

// rehash moves every occupied slot into a new table of length size.
func (sh *memShard) rehash(size int) {
	old := sh.slots
	sh.slots = make([]slot, size)
	mask := size - 1
	for k := range old {
		e := &old[k]
		if e.hash == 0 {
			continue
		}
		i := home(e.hash, mask)
		for sh.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		sh.slots[i] = *e
	}
}

// sweep removes every key whose windows have both ended and records when
// the next one can end. The caller holds sh.mu.
func (s *MemoryStore) sweep(sh *memShard, nowNs int64) {
	windows := s.pols.Load().windows
	next := int64(math.MaxInt64)
	live := 0
	for k := range sh.slots {
		e := &sh.slots[k]
		if e.hash == 0 {
			continue
		}
		if exp := expires(e, windows[e.pol]); exp <= nowNs && e.flags&slotPinned == 0 {
			e.hash = 0
		} else {
			next = min(next, exp)
			live++
		}
	}
	sh.n = live
	sh.nextSweep = next
	sh.rehash(len(sh.slots)) // close the gaps left in the probe sequences
}

// evictSample is how many keys eviction compares, at least.
const evictSample = 8

// evictOne removes one key of a full shard: of evictSample keys found from
// a pseudo-random position (from the new key's seeded hash), the one that
// is not refused with the fewest requests in its trailing window now, then
// the one whose count ends first. When every sampled key is refused, the
// scan goes on to the first key that is not, through the whole table if
// need be, so a refused key is evicted only from a shard where every key
// is refused. The caller holds sh.mu.
func (s *MemoryStore) evictOne(sh *memShard, h uint64, nowNs int64) {
	windows := s.pols.Load().windows
	mask := len(sh.slots) - 1
	victim, best, seen := -1, standing{}, 0
	var at windowAt // of the last policy seen: the sampled keys mostly share one
	for i, steps := int(h>>40)&mask, 0; steps <= mask; i, steps = (i+1)&mask, steps+1 {
		e := &sh.slots[i]
		if e.hash == 0 || e.flags&slotPinned != 0 {
			continue
		}
		if seen == 0 || e.pol != at.pol {
			at = windowAtOf(e.pol, windows[e.pol], nowNs)
		}
		if st := at.standing(e); victim < 0 || st.before(best) {
			victim, best = i, st
		}
		if seen++; seen >= evictSample && !best.refused {
			break
		}
	}
	if victim >= 0 {
		sh.deleteAt(victim)
	}
}

// standing is what eviction weighs of a key: evict first what costs the
// least to forget.
type standing struct {
	refused  bool    // its next request is refused (see slotRefused)
	estimate float64 // requests in its trailing window now
	expires  int64   // when (Unix ns) its count is zero
}

// before reports whether a key standing at a is evicted before one at b.
func (a standing) before(b standing) bool {
	switch {
	case a.refused != b.refused:
		return !a.refused
	case a.estimate != b.estimate:
		return a.estimate < b.estimate
	}
	return a.expires < b.expires
}

// windowAt is where now falls in the windows of one policy.
type windowAt struct {
	pol    uint16
	window int64
	index  int64   // the fixed window of now
	weight float64 // the share of the previous window still in the trailing one
}

func windowAtOf(pol uint16, window, nowNs int64) windowAt {
	index, elapsed := windowIndex(nowNs, window)
	return windowAt{pol: pol, window: window, index: index, weight: float64(window-elapsed) / float64(window)}
}

// standing is e's standing now; e is under at's policy.
func (at *windowAt) standing(e *slot) standing {
	st := standing{expires: expires(e, at.window)}
	prev, cur, ahead := e.countsAt(at.index)
	if prev == 0 && cur == 0 {
		// Both windows have ended (or the key's window is stale): whatever
		// its last take found, it counts nothing now.
		return st
	}
	weight := at.weight
	if ahead {
		weight = 1 // counted at the start of its window
	}
	st.refused = e.flags&slotRefused != 0
	st.estimate = float64(prev)*weight + float64(cur)
	return st
}

// deleteAt empties slot i and shifts the following slots of its probe run
// back, so that every key stays reachable from its home slot without
// tombstones. The caller holds sh.mu.
func (sh *memShard) deleteAt(i int) {
	mask := len(sh.slots) - 1
	for j := (i + 1) & mask; sh.slots[j].hash != 0; j = (j + 1) & mask {
		k := home(sh.slots[j].hash, mask)
		// The key at j may move to i unless its home lies cyclically in
		// (i, j]: then i is before its home.
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			sh.slots[i] = sh.slots[j]
			i = j
		}
	}
	sh.slots[i] = slot{}
	sh.n--
}

// Len is the number of keys the store tracks now.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// hash is the slot hash of key under policy number pol; never 0, which
// marks an empty slot. Its low byte, which picks the shard, is the key's
// seeded hash alone, so that every policy of a key lives in one shard
// (TakeAll then holds one lock); the other bits mix in the policy, so the
// policies of a key probe from different home slots.
func (s *MemoryStore) hash(pol uint16, key string) uint64 {
	h := maphash.String(s.seed, key)
	m := (uint64(pol) + 1) * 0x9e3779b97f4a7c15
	m ^= m >> 29
	h ^= m << 8
	if h == 0 {
		h = 1 << 63 // the same low byte, so the same shard
	}
	return h
}

// digest writes the replacement of a long key, two independent seeded
// 64-bit hashes, into buf; the
// slot is marked hashed, so a short key with the same 16 bytes is still a
// different key.
func (s *MemoryStore) digest(buf *[16]byte, key string) {
	a := maphash.String(s.seed, key)
	b := maphash.String(s.seed2, key)
	for i := range 8 {
		buf[i] = byte(a >> (8 * i))
		buf[8+i] = byte(b >> (8 * i))
	}
}
