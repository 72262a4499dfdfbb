//go:build unix

package shmtable

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// Store is a [ratelimit.Store] over a Table: the counts of every process
// that maps the table, under one namespace. Two Stores of one namespace
// (in one process or in two) share counts; Stores of different namespaces
// never do, whatever their policies. It is safe for concurrent use.
//
// Take never blocks on another process: it is a lookup of at most 64
// slots, then one CAS on one word, retried while other takes of the same
// key win the race. It ignores ctx.
//
// TakeAll is all or none and never counts more than fits, but it is a CAS
// per policy, not one: between the first and the last, a concurrent take
// of the same key may see the first policies counted and the last not
// (and be refused when it would have fitted, if this take then fails and
// is rolled back); a process killed between them leaves the take counted
// under the first policies only. Both err on the side of refusing.
type Store struct {
	t  *Table
	ns string

	pols atomic.Pointer[polCache] // copy on write
	mu   sync.Mutex               // serialises writers of pols
}

// polCache is what a Store knows of the policies it has used.
type polCache struct {
	keys []polKey
	ids  []uint16
	m    map[polKey]uint16 // past 8 policies
}

type polKey struct {
	name   string
	window time.Duration
}

// Store returns the view of t under namespace (may be empty).
func (t *Table) Store(namespace string) *Store {
	s := &Store{t: t, ns: namespace}
	s.pols.Store(&polCache{})
	return s
}

// Register numbers the policies ps in the table now, so that a table
// without room for them is an error when a limiter is built rather than at
// its first request.
func (s *Store) Register(ps []ratelimit.Policy) error {
	for _, p := range ps {
		if err := p.Valid(); err != nil {
			return err
		}
		if _, err := s.policyID(p); err != nil {
			return err
		}
	}
	return nil
}

// policyID returns the table's number of p under s's namespace.
func (s *Store) policyID(p ratelimit.Policy) (uint16, error) {
	k := polKey{p.Name, p.Window}
	c := s.pols.Load()
	if c.m == nil {
		for i := range c.keys {
			if c.keys[i] == k {
				return c.ids[i], nil
			}
		}
	} else if id, ok := c.m[k]; ok {
		return id, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c = s.pols.Load()
	for i := range c.keys {
		if c.keys[i] == k {
			return c.ids[i], nil
		}
	}
	name := p.Name
	if s.ns != "" {
		name = s.ns + "\x00" + p.Name
	}
	id, err := s.t.register(name, int64(p.Window))
	if err != nil {
		return 0, err
	}
	n := len(c.keys)
	next := &polCache{keys: append(c.keys[:n:n], k), ids: append(c.ids[:n:n], id)}
	if len(next.keys) > 8 {
		next.m = make(map[polKey]uint16, len(next.keys))
		for i, k := range next.keys {
			next.m[k] = next.ids[i]
		}
	}
	s.pols.Store(next)
	return id, nil
}

// Take implements [ratelimit.Store].
func (s *Store) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	if err := p.Valid(); err != nil {
		return ratelimit.Window{}, err
	}
	if n < 0 {
		return ratelimit.Window{}, fmt.Errorf("%w (n=%d)", ratelimit.ErrInvalidN, n)
	}
	pol, err := s.policyID(p)
	if err != nil {
		return ratelimit.Window{}, err
	}
	t := s.t
	k := t.idOf(pol, key)
	nowNs := now.UnixNano()
	k0, el := windowIndex(nowNs, int64(p.Window))
	for {
		i := t.findOrInsert(k, nowNs)
		if i < 0 {
			return ratelimit.Window{}, errFull
		}
		sl := &t.slots[i]
		for {
			v := view(sl, k0)
			elapsed := time.Duration(el)
			if v.ahead {
				elapsed = 0
			}
			allowed := p.Fits(v.prev, v.cur, elapsed, n)
			c := v.cur
			if allowed {
				c = min(c+int64(n), countMask)
			}
			nw := pack(v.idx, c, !p.Fits(v.prev, c, elapsed, 1))
			if nw != v.wc && !sl.w[v.idx&1].CompareAndSwap(v.wc, nw) {
				continue
			}
			if v.junk != 0 {
				sl.w[(v.idx+1)&1].CompareAndSwap(v.junk, 0)
			}
			if sl.tag.Load() != k.tag {
				break // evicted under the take: take again, in its new slot
			}
			return ratelimit.Window{Allowed: allowed, Previous: v.prev, Current: c, Elapsed: elapsed, Index: v.idx}, nil
		}
	}
}

// TakeAll implements [ratelimit.Store] (see [Store] for what a
// concurrent take can see of it).
func (s *Store) TakeAll(ctx context.Context, ps []ratelimit.Policy, key string, now time.Time, n int, ws []ratelimit.Window) (bool, error) {
	if err := ratelimit.CheckArgs(ps, len(ws), n, 0); err != nil {
		return false, err
	}
	t := s.t
	var ks [ratelimit.MaxPolicies]id
	var k0, el [ratelimit.MaxPolicies]int64
	for i, p := range ps {
		pol, err := s.policyID(p)
		if err != nil {
			return false, err
		}
		ks[i] = t.idOf(pol, key)
		k0[i], el[i] = windowIndex(now.UnixNano(), int64(p.Window))
	}
	nowNs := now.UnixNano()
	var at [ratelimit.MaxPolicies]int
	var wc, nw, junk [ratelimit.MaxPolicies]uint64
	var idx [ratelimit.MaxPolicies]int64
	var added [ratelimit.MaxPolicies]int64
retry:
	for i := range ps {
		if at[i] = t.findOrInsert(ks[i], nowNs); at[i] < 0 {
			return false, errFull
		}
	}
	fits := true
	for i, p := range ps {
		v := view(&t.slots[at[i]], k0[i])
		idx[i], wc[i], junk[i] = v.idx, v.wc, v.junk
		elapsed := time.Duration(el[i])
		if v.ahead {
			elapsed = 0
		}
		ws[i] = ratelimit.Window{Previous: v.prev, Current: v.cur, Elapsed: elapsed, Index: v.idx}
		fits = fits && p.Fits(v.prev, v.cur, elapsed, n)
	}
	for i, p := range ps {
		w := &ws[i]
		added[i] = 0
		if fits {
			c := min(w.Current+int64(n), countMask)
			added[i] = c - w.Current
			w.Current, w.Allowed = c, true
		}
		nw[i] = pack(idx[i], w.Current, !p.Fits(w.Previous, w.Current, w.Elapsed, 1))
	}
	for i := range ps {
		sl := &t.slots[at[i]]
		if nw[i] != wc[i] && !sl.w[idx[i]&1].CompareAndSwap(wc[i], nw[i]) {
			rollback(t, at[:i], idx[:i], added[:i])
			goto retry
		}
	}
	for i := range ps {
		if junk[i] != 0 {
			t.slots[at[i]].w[(idx[i]+1)&1].CompareAndSwap(junk[i], 0)
		}
	}
	for i := range ps {
		if t.slots[at[i]].tag.Load() != ks[i].tag {
			rollback(t, at[:len(ps)], idx[:len(ps)], added[:len(ps)])
			goto retry
		}
	}
	return fits, nil
}

// rollback gives back what a TakeAll counted in the slots at before it
// found that it had to start again.
func rollback(t *Table, at []int, idx, added []int64) {
	for i := range at {
		if added[i] > 0 {
			unCount(&t.slots[at[i]], idx[i], added[i])
		}
	}
}

// Refund implements [ratelimit.Store].
func (s *Store) Refund(ctx context.Context, ps []ratelimit.Policy, key string, n int, ws []ratelimit.Window) error {
	if err := ratelimit.CheckArgs(ps, len(ws), n, 0); err != nil {
		return err
	}
	for i, p := range ps {
		if !ws[i].Allowed {
			continue // never counted
		}
		pol, err := s.policyID(p)
		if err != nil {
			return err
		}
		if at := s.t.find(s.t.idOf(pol, key)); at >= 0 {
			unCount(&s.t.slots[at], ws[i].Index, int64(n))
		}
	}
	return nil
}

// Peek implements [ratelimit.Store].
func (s *Store) Peek(ctx context.Context, ps []ratelimit.Policy, key string, now time.Time, ws []ratelimit.Window) error {
	if err := ratelimit.CheckArgs(ps, len(ws), 0, 0); err != nil {
		return err
	}
	for i, p := range ps {
		pol, err := s.policyID(p)
		if err != nil {
			return err
		}
		k0, el := windowIndex(now.UnixNano(), int64(p.Window))
		w := ratelimit.Window{Elapsed: time.Duration(el), Index: k0}
		if at := s.t.find(s.t.idOf(pol, key)); at >= 0 {
			v := view(&s.t.slots[at], k0)
			w.Index, w.Previous, w.Current = v.idx, v.prev, v.cur
			if v.ahead {
				w.Elapsed = 0
			}
		}
		w.Allowed = p.Fits(w.Previous, w.Current, w.Elapsed, 1)
		ws[i] = w
	}
	return nil
}

// Reset implements [ratelimit.Store].
func (s *Store) Reset(ctx context.Context, ps []ratelimit.Policy, key string) error {
	if err := ratelimit.CheckArgs(ps, -1, 0, 0); err != nil {
		return err
	}
	for _, p := range ps {
		pol, err := s.policyID(p)
		if err != nil {
			return err
		}
		k := s.t.idOf(pol, key)
		if at := s.t.find(k); at >= 0 && s.t.slots[at].tag.CompareAndSwap(k.tag, tomb) {
			s.t.live.Add(-1)
		}
	}
	return nil
}
