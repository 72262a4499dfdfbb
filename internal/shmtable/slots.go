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
		free, freeTag, at := t.scan(k)
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
		switch i := t.claim(k, free, freeTag); {
		case i >= 0:
			return i
		case i == -2:
			runtime.Gosched() // another inserter of the key is ahead: wait for it in scan
		}
	}
}

// scan looks for k along its neighbourhood and returns its slot (at), or
// the first free slot (free, with the tag it holds), or neither.
func (t *Table) scan(k id) (free int, freeTag uint64, at int) {
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
			return free, freeTag, -1
		case stTomb:
			if free < 0 {
				free, freeTag = int(i), tag
			}
		case stReady:
			if tag == k.tag && s.id2.Load() == k.id2 {
				return -1, 0, int(i)
			}
		case stBusy:
			if tag&low30 == k.tag&low30 && t.waitBusy(s, tag) {
				goto again
			}
		}
	}
	return free, freeTag, -1
}

// claim inserts k at slot free (which held freeTag) and returns its slot:
// free, or the slot of a copy of k another process inserted at the same
// time. It returns -1 when the slot was taken first, -2 when another
// process is inserting what may be k before it in the chain: scan again.
func (t *Table) claim(k id, free int, freeTag uint64) int {
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
			if tag&low30 != k.tag&low30 {
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
		if st, ok := t.standing(s, tag, nowNs); ok && st.estimate == 0 && st.expired && s.tag.CompareAndSwap(tag, tomb) {
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

// evictOne evicts the key MemoryStore's rule picks: of evictSample keys
// from k's home on, the one that is not refused with the fewest requests
// in its trailing window now, then the one whose count ends first; when
// every sampled key is refused, the scan goes on to the first key that is
// not, through the whole table if need be. When k's neighbourhood is full
// the victim must come from it, refused or not.
func (t *Table) evictOne(k id, nowNs int64, full bool) bool {
	limit := uint64(len(t.slots))
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

// standing is the standing now of the key in s (whose tag is tag); false
// when its policy is unknown to this process yet.
func (t *Table) standing(s *slot, tag uint64, nowNs int64) (standing, bool) {
	w := t.policyWindow(uint16(tag >> 50 & (MaxPolicies - 1)))
	if w <= 0 {
		return standing{}, false
	}
	k, elapsed := windowIndex(nowNs, w)
	idx, wc, prev, cur, ahead := view(s, k)
	st := standing{expires: (idx + 1) * w}
	if cur > 0 {
		st.expires = (idx + 2) * w
	}
	if prev == 0 && cur == 0 {
		st.expired = !ahead
		return st, true
	}
	weight := float64(w-elapsed) / float64(w)
	if ahead {
		weight = 1
	}
	st.refused = wc&refusedBit != 0
	st.estimate = float64(prev)*weight + float64(cur)
	return st, true
}

// view reads s at window k: the window a take counts in (k, or the later
// window another process's clock already moved the key to: ahead), the raw
// word of that window's parity (what the take's CAS expects), and the
// counts of the window and of the one before it.
func view(s *slot, k int64) (idx int64, wc uint64, prev, cur int64, ahead bool) {
	k32 := uint32(k)
	a := s.w[k&1].Load()     // window k, or k−2, k+2…
	b := s.w[(k+1)&1].Load() // window k−1, or k+1…
	ia, ib := uint32(a>>32), uint32(b>>32)
	switch {
	case b != 0 && ib == k32+1:
		idx, wc, cur, ahead = k+1, b, int64(b&countMask), true
		if a != 0 && ia == k32 {
			prev = int64(a & countMask)
		}
	case a != 0 && ia == k32+2:
		idx, wc, cur, ahead = k+2, a, int64(a&countMask), true
	default:
		idx, wc = k, a
		if ia == k32 {
			cur = int64(a & countMask)
		}
		if ib == k32-1 {
			prev = int64(b & countMask)
		}
	}
	return idx, wc, prev, cur, ahead
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
