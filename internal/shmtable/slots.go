//go:build unix

package shmtable

import (
	"errors"
	"runtime"
)

// errFull is returned when a key's whole neighbourhood is being inserted
// into by other processes at once, so that nothing can be evicted: it
// cannot happen unless 64 inserts collide in one place.
var errFull = errors.New("shmtable: no slot free near the key")

// findOrInsert returns the slot of k, inserting k when it is missing.
func (t *Table) findOrInsert(k id, nowNs int64) int {
	overCap := false
	for attempt := 0; ; attempt++ {
		free, freeTag, at, stale := t.scan(k)
		if at >= 0 {
			return at
		}
		if attempt > 8 {
			// Others keep taking the room this insert makes: go over the
			// cap by this key rather than spin.
			overCap = true
		}
		if free < 0 || (!overCap && t.live.Load() >= t.maxKeys) {
			if !t.makeRoom(k, nowNs, free < 0) && free < 0 && attempt > 16 {
				return -1
			}
			continue
		}
		switch i := t.claim(k, free, freeTag, stale); {
		case i >= 0:
			return i
		case i == -2:
			runtime.Gosched() // another inserter of the key is ahead: wait for it in scan
		}
	}
}

// scan looks for k along its neighbourhood and returns its slot (at), or
// the first free slot (free, with the tag it holds), or neither; stale has
// bit d set for the BUSY slot d steps from home that it passed by after
// busyWait (its owner is alive but does not finish).
func (t *Table) scan(k id) (free int, freeTag uint64, at int, stale uint64) {
	free = -1
	for d := uint64(0); d < neighbourhood; d++ {
		i := (k.home + d) & t.mask
		s := &t.slots[i]
	again:
		tag := s.tag.Load()
		switch state(tag) {
		case stEmpty:
			if free < 0 {
				free, freeTag = int(i), tag
			}
			return free, freeTag, -1, stale
		case stTomb:
			if free < 0 {
				free, freeTag = int(i), tag
			}
		case stReady:
			if tag == k.tag && s.id2.Load() == k.id2 {
				return -1, 0, int(i), 0
			}
		case stBusy:
			if tag&low30 == k.tag&low30 {
				if t.waitBusy(s, tag) {
					goto again
				}
				stale |= 1 << d
			}
		}
	}
	return free, freeTag, -1, stale
}

// claim inserts k at slot free (which held freeTag) and returns its slot:
// free, or the slot of a copy of k another process inserted at the same
// time. It returns -1 when the slot was taken first, -2 when another
// process is inserting what may be k before it in the chain: scan again.
// The BUSY slots of stale (see scan) are passed by.
func (t *Table) claim(k id, free int, freeTag uint64, stale uint64) int {
	s := &t.slots[free]
	busy := t.busyTag(k.tag)
	// Counted before the claim, so that a process killed between the two
	// leaves the count too high (the cap a key lower), never too low.
	t.live.Add(1)
	if !s.tag.CompareAndSwap(freeTag, busy) {
		t.live.Add(-1)
		return -1
	}
	s.w[0].Store(0)
	s.w[1].Store(0)
	s.id2.Store(k.id2)
	df := (uint64(free) - k.home) & t.mask
	giveBack := func() {
		s.tag.Store(tomb)
		t.live.Add(-1)
	}
	for d := uint64(0); d < neighbourhood; d++ {
		if d == df {
			continue
		}
		i := (k.home + d) & t.mask
		o := &t.slots[i]
	again:
		tag := o.tag.Load()
		switch state(tag) {
		case stEmpty:
			if d > df {
				d = neighbourhood // the chain ends here
			}
		case stReady:
			if tag == k.tag && o.id2.Load() == k.id2 {
				giveBack()
				return int(i)
			}
		case stBusy:
			if tag&low30 != k.tag&low30 || stale&(1<<d) != 0 {
				continue
			}
			if d < df {
				// A lower claim of what may be k: it will not wait for
				// this one (it waits only for claims after its own), so
				// give way, and find k once it is ready.
				giveBack()
				return -2
			}
			if t.waitBusy(o, tag) {
				goto again
			}
		}
	}
	s.tag.Store(k.tag)
	return free
}

// makeRoom frees a slot for k: expired keys of its neighbourhood first,
// else one evicted key (from the neighbourhood when it is full). It
// reports whether it freed anything.
func (t *Table) makeRoom(k id, nowNs int64, full bool) bool {
	freed := false
	for d := uint64(0); d < neighbourhood; d++ {
		s := &t.slots[(k.home+d)&t.mask]
		tag := s.tag.Load()
		if state(tag) == stEmpty {
			break
		}
		if state(tag) != stReady {
			continue
		}
		if st, ok := t.standing(s, tag, nowNs); ok && st.expired && s.tag.CompareAndSwap(tag, tomb) {
			t.live.Add(-1)
			freed = true
		}
	}
	if freed {
		return true
	}
	return t.evictOne(k, nowNs, full)
}

// evictSample is how many keys eviction compares, at least (as
// MemoryStore does).
const evictSample = 8

// evictScan bounds the slots eviction reads looking for a key that is not
// refused: 256 KiB, what a MemoryStore shard holds at the default cap, so
// that a table full of refused keys costs each new key tens of µs, not a
// pass over the whole table.
const evictScan = 8192

// evictOne evicts the key MemoryStore's rule picks: of evictSample keys
// from k's home on, the one that is not refused with the fewest requests
// in its trailing window now, then the one whose count ends first; when
// every sampled key is refused, the scan goes on to the first key that is
// not, up to evictScan slots (then the least counted refused key goes).
// When k's neighbourhood is full the victim must come from it, refused or
// not.
func (t *Table) evictOne(k id, nowNs int64, full bool) bool {
	limit := min(uint64(len(t.slots)), evictScan)
	if full {
		limit = neighbourhood
	}
	victim, vtag, best, seen := -1, uint64(0), standing{}, 0
	for d := uint64(0); d < limit; d++ {
		i := (k.home + d) & t.mask
		s := &t.slots[i]
		tag := s.tag.Load()
		if state(tag) != stReady {
			continue
		}
		st, ok := t.standing(s, tag, nowNs)
		if !ok {
			continue
		}
		if victim < 0 || st.before(best) {
			victim, vtag, best = int(i), tag, st
		}
		if seen++; seen >= evictSample && !best.refused {
			break
		}
	}
	if victim < 0 {
		return false
	}
	if t.slots[victim].tag.CompareAndSwap(vtag, tomb) {
		t.live.Add(-1)
		return true
	}
	return false
}

// standing is what eviction weighs of a key: evict first what costs the
// least to forget.
type standing struct {
	refused  bool    // its last take left it refused
	estimate float64 // requests in its trailing window now
	expires  int64   // when (Unix ns) its count is zero
	expired  bool    // both windows have ended
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

// standing is the standing now of the key in s (whose tag is tag), as
// MemoryStore weighs it; false when its policy is unknown to this process
// yet.
func (t *Table) standing(s *slot, tag uint64, nowNs int64) (standing, bool) {
	w := t.policyWindow(uint16(tag >> 50 & (MaxPolicies - 1)))
	if w <= 0 {
		return standing{}, false
	}
	k, elapsed := windowIndex(nowNs, w)
	v := view(s, k)
	st := standing{expires: (v.last + 1) * w}
	if v.lastCur > 0 {
		st.expires = (v.last + 2) * w
	}
	st.expired = st.expires <= nowNs
	if v.prev == 0 && v.cur == 0 {
		return st, true
	}
	weight := float64(w-elapsed) / float64(w)
	if v.ahead {
		weight = 1
	}
	st.refused = v.refused
	st.estimate = float64(v.prev)*weight + float64(v.cur)
	return st, true
}

// seen is a slot as a take at window k sees it.
type seen struct {
	idx   int64  // the window the take counts in: k, or the key's when it is ahead
	wc    uint64 // the raw word of idx's parity: what the take's CAS expects
	prev  int64  // the count of window idx-1
	cur   int64  // the count of window idx
	ahead bool   // the key's window is after k (another clock is ahead)
	// junk is the raw word of the other parity when it holds a window
	// after k that the take must clear (the clock went back more than two
	// windows: the key starts again at k, as in MemoryStore), else 0.
	junk    uint64
	last    int64 // the key's window: the later of the two words
	lastCur int64 // its count
	refused bool  // the refused flag of the key's last take
}

// view reads s at window k the way MemoryStore's slot reads at k: the
// later of the two words is the key's window L and its count, the other
// word is L−1's count if it holds L−1; then L = k counts on, L = k−1 is
// the previous window, L ahead by one or two windows is taken at its own
// start, anything else is over.
func view(s *slot, k int64) seen {
	a := s.w[k&1].Load()     // the word of k's parity
	b := s.w[(k+1)&1].Load() // the other
	if a == 0 && b == 0 {
		return seen{idx: k, last: k}
	}
	lw, ow := b, a
	if b == 0 || (a != 0 && int32(uint32(a>>32)-uint32(b>>32)) > 0) {
		lw, ow = a, b
	}
	l32 := uint32(lw >> 32)
	var sprev int64
	if ow != 0 && uint32(ow>>32) == l32-1 {
		sprev = int64(ow & countMask)
	}
	scur := int64(lw & countMask)
	d := int32(l32 - uint32(k))
	v := seen{idx: k, wc: a, last: k + int64(d), lastCur: scur, refused: lw&refusedBit != 0}
	switch {
	case d == 0:
		v.prev, v.cur = sprev, scur
	case d == -1:
		v.prev = scur
	case d == 1 || d == 2:
		v.idx, v.wc, v.prev, v.cur, v.ahead = v.last, lw, sprev, scur, true
	case d > 2:
		v.junk = b
	}
	return v
}

// pack is the word of window idx holding count, refused or not.
func pack(idx int64, count int64, refused bool) uint64 {
	w := uint64(uint32(idx))<<32 | uint64(min(count, countMask))
	if refused {
		w |= refusedBit
	}
	return w
}

// unCount takes n back from the word of window idx in s, if it still
// holds that window; a count never goes below zero.
func unCount(s *slot, idx int64, n int64) {
	w := &s.w[idx&1]
	for {
		v := w.Load()
		if v == 0 || uint32(v>>32) != uint32(idx) {
			return
		}
		c := max(0, int64(v&countMask)-n)
		if w.CompareAndSwap(v, v&^countMask|uint64(c)) {
			return
		}
	}
}

// windowIndex returns the index of the fixed window of length w (ns)
// that contains ns, and the time elapsed since its start, as ratelimit
// computes it (windows aligned on the Unix epoch).
func windowIndex(ns, w int64) (index, elapsed int64) {
	index, elapsed = ns/w, ns%w
	if elapsed < 0 {
		index--
		elapsed += w
	}
	return index, elapsed
}

// policyWindow is the window (ns) of policy number pol, 0 when it is not
// ready.
func (t *Table) policyWindow(pol uint16) int64 {
	if w := t.windows[pol].Load(); w != 0 {
		return w
	}
	e := &t.pols[pol]
	if e.state.Load()>>62 != stReady {
		return 0
	}
	w := e.window.Load()
	t.windows[pol].Store(w)
	return w
}

// errTooManyPolicies is returned past MaxPolicies distinct policies.
var errTooManyPolicies = errors.New("shmtable: more than 1024 distinct policy names and windows")

// register returns the number of the policy (name, window), numbering it
// the first time any process sees it. Entries are never removed, so the
// first EMPTY entry of the probe ends it, and two processes numbering one
// policy at once meet at the same entry: the loser of the CAS waits for
// the winner's entry to be ready and compares.
func (t *Table) register(name string, window int64) (uint16, error) {
	var digest [16]byte
	stored, hashed := name, len(name) > polName
	if hashed {
		a, b := hash(t.seed1^m2, name), hash(t.seed2^m3, name)
		for i := range 8 {
			digest[i], digest[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
		}
		stored = string(digest[:])
	}
	nlen := uint64(len(stored))
	if hashed {
		nlen |= 1 << 63
	}
	h := hash(t.seed1^uint64(window), name)
	for d := range uint64(MaxPolicies) {
		i := (h + d) % MaxPolicies
		e := &t.pols[i]
	again:
		st := e.state.Load()
		switch st >> 62 {
		case stEmpty:
			if !e.state.CompareAndSwap(0, uint64(stBusy)<<62|t.pid<<30) {
				goto again
			}
			e.window.Store(window)
			copy(e.name[:], stored)
			e.nlen.Store(nlen)
			e.state.Store(uint64(stReady) << 62)
			return uint16(i), nil
		case stBusy:
			t.waitPolicy(e, st)
			goto again
		case stReady:
			if e.window.Load() == window && e.nlen.Load() == nlen && string(e.name[:len(stored)]) == stored {
				return uint16(i), nil
			}
		}
	}
	return 0, errTooManyPolicies
}

// waitPolicy waits until a BUSY policy entry is ready, or frees it when
// the process numbering it has died.
func (t *Table) waitPolicy(e *policyEntry, st uint64) {
	for n := 0; e.state.Load() == st; n++ {
		runtime.Gosched()
		if n%256 == 255 && dead(busyPid(st)) {
			e.state.CompareAndSwap(st, 0)
		}
	}
}
