//go:build unix

package shmtable

import (
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/shipshape-go/shipshape/internal/shm"
	"math/bits"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shipshape-go/shipshape/ratelimit"
)

const (
	magic   = 0x53485053_54424c31 // "SHPSTBL1"
	version = 1

	headerSize = 4096
	// MaxPolicies is how many distinct (namespace, name, window) policies a
	// table numbers; registering one more is an error.
	MaxPolicies = 1024
	polSize     = 128
	polName     = polSize - 24 // name bytes kept verbatim; longer names as a digest
	slotSize    = 32

	// neighbourhood is how far from its home slot a key may live: a lookup
	// reads at most this many slots (2 KiB), and a new key whose
	// neighbourhood is full evicts one of them.
	neighbourhood = 64

	// MaxKeys bounds the key cap of a table (2³² slots).
	MaxKeys = 3 << 30
)

// Header word offsets.
const (
	hMagic   = 0
	hVersion = 8
	hSlots   = 16
	hMaxKeys = 24
	hSeed1   = 32
	hSeed2   = 40
	hLive    = 64 // own cache line: every insert and eviction writes it
)

// Tag states (top two bits).
const (
	stEmpty = 0
	stBusy  = 1
	stReady = 2
	stTomb  = 3

	tomb     = uint64(stTomb) << 62
	low30    = 1<<30 - 1
	hashMask = 1<<50 - 1
)

// Window word: index mod 2³² | refused | count.
const (
	refusedBit = 1 << 31
	countMask  = 1<<31 - 1
)

// ErrIncompatible is returned by [Open] for a file that is not a table of
// this layout (another magic number or version, or a size that does not
// match its header): a worker of another build than the supervisor's. It is
// never papered over with per-process counts.
var ErrIncompatible = errors.New("shmtable: incompatible table")

// slot is one key's state under one policy.
type slot struct {
	tag atomic.Uint64
	id2 atomic.Uint64
	w   [2]atomic.Uint64
}

// policyEntry is one numbered policy in the shared table.
type policyEntry struct {
	state  atomic.Uint64 // 0 empty, busy(pid), ready
	window atomic.Int64
	nlen   atomic.Uint64 // name length; top bit: the name is a digest
	name   [polName]byte
}

// Table is a mapping of a shared table. It is safe for concurrent use; a
// process maps a table once and takes [Table.Store] views of it.
type Table struct {
	mem     []byte
	slots   []slot
	pols    []policyEntry
	mask    uint64
	maxKeys int64
	seed1   uint64
	seed2   uint64
	live    *atomic.Int64
	pid     uint64
	windows [MaxPolicies]atomic.Int64 // cache of pols[i].window once ready
}

// Size is the size in bytes of a table of maxKeys keys.
func Size(maxKeys int) int64 {
	return headerSize + MaxPolicies*polSize + int64(slotsFor(maxKeys))*slotSize
}

// slotsFor is the slot count for maxKeys: a power of two, at most 3/4 full
// at the cap, and at least one neighbourhood.
func slotsFor(maxKeys int) uint64 {
	n := uint64(neighbourhood)
	for n*3/4 < uint64(maxKeys) {
		n *= 2
	}
	return n
}

// Create makes a new table for maxKeys keys in a file of its own (a sealed
// memfd on Linux) and maps it. The file is what other processes inherit and
// pass to [Open]; the table lives as long as any descriptor or mapping of
// it.
func Create(maxKeys int) (*os.File, *Table, error) {
	if maxKeys < 1 || maxKeys > MaxKeys {
		return nil, nil, fmt.Errorf("shmtable: %d keys, want 1 to %d", maxKeys, MaxKeys)
	}
	size := Size(maxKeys)
	f, err := shm.Create("ratelimit", size)
	if err != nil {
		return nil, nil, fmt.Errorf("shmtable: %w", err)
	}
	mem, err := shm.Map(f, int(size))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("shmtable: %w", err)
	}
	var seeds [16]byte
	if _, err := rand.Read(seeds[:]); err != nil {
		unix.Munmap(mem)
		f.Close()
		return nil, nil, fmt.Errorf("shmtable: seeds: %w", err)
	}
	word(mem, hSlots).Store(slotsFor(maxKeys))
	word(mem, hMaxKeys).Store(uint64(maxKeys))
	word(mem, hSeed1).Store(le64(seeds[:8]) | 1)
	word(mem, hSeed2).Store(le64(seeds[8:]) | 1)
	word(mem, hVersion).Store(version)
	word(mem, hMagic).Store(magic) // last: a table is complete once it has its magic
	t, err := newTable(mem)
	if err != nil {
		unix.Munmap(mem)
		f.Close()
		return nil, nil, err
	}
	return f, t, nil
}

// Open maps the table in f (made by [Create], in this process or another).
// It returns an error wrapping [ErrIncompatible] for a file that does not
// hold a table of this layout.
func Open(f *os.File) (*Table, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shmtable: %w", err)
	}
	if st.Size() < headerSize+MaxPolicies*polSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrIncompatible, st.Size())
	}
	mem, err := shm.Map(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("shmtable: %w", err)
	}
	t, err := newTable(mem)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return t, nil
}

func newTable(mem []byte) (*Table, error) {
	if m, v := word(mem, hMagic).Load(), word(mem, hVersion).Load(); m != magic || v != version {
		return nil, fmt.Errorf("%w: magic %#x version %d, want %#x version %d", ErrIncompatible, m, v, uint64(magic), version)
	}
	n := word(mem, hSlots).Load()
	if n == 0 || n&(n-1) != 0 || int64(len(mem)) != headerSize+MaxPolicies*polSize+int64(n)*slotSize {
		return nil, fmt.Errorf("%w: %d slots in %d bytes", ErrIncompatible, n, len(mem))
	}
	t := &Table{
		mem:     mem,
		pols:    unsafe.Slice((*policyEntry)(unsafe.Pointer(&mem[headerSize])), MaxPolicies),
		slots:   unsafe.Slice((*slot)(unsafe.Pointer(&mem[headerSize+MaxPolicies*polSize])), n),
		mask:    n - 1,
		maxKeys: int64(word(mem, hMaxKeys).Load()),
		seed1:   word(mem, hSeed1).Load(),
		seed2:   word(mem, hSeed2).Load(),
		live:    (*atomic.Int64)(unsafe.Pointer(&mem[hLive])),
		pid:     uint64(os.Getpid()),
	}
	return t, nil
}

// Close unmaps the table. Nothing of it may be used afterwards.
func (t *Table) Close() error {
	if t.mem == nil {
		return nil
	}
	err := unix.Munmap(t.mem)
	t.mem, t.slots, t.pols = nil, nil, nil
	return err
}

// Len is the number of keys the table holds (across every policy), as the
// live counter says: a process killed between a claim and its count leaves
// it one too high, never too low (see [Table.ReclaimDead]).
func (t *Table) Len() int { return int(t.live.Load()) }

// MaxKeys is the key cap the table was created with.
func (t *Table) MaxKeys() int { return int(t.maxKeys) }

// Slots is the number of slots of the table.
func (t *Table) Slots() int { return len(t.slots) }

func word(mem []byte, off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// Keyed hash (wyhash's mixing, as the Go runtime's fallback): fast on the
// short keys of rate limiting, seeded from the table so that clients cannot
// choose colliding keys.
const (
	m1 = 0xa0761d6478bd642f
	m2 = 0xe7037ed1a0b428db
	m3 = 0x8ebc6af09c88c6e3
	m4 = 0x589965cc75374cc3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func r8(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func r4(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}

func hash(seed uint64, s string) uint64 {
	n := uint64(len(s))
	seed ^= m1
	for len(s) > 16 {
		seed = mix(r8(s)^m2, r8(s[8:])^seed)
		s = s[16:]
	}
	var a, b uint64
	switch l := len(s); {
	case l > 8:
		a, b = r8(s), r8(s[l-8:])
	case l >= 4:
		a, b = r4(s)<<32|r4(s[l-4:]), 0
	case l > 0:
		a = uint64(s[0])<<16 | uint64(s[l>>1])<<8 | uint64(s[l-1])
	}
	return mix(m4^n, mix(a^m2, b^seed^m3))
}

// id is a key's identity under one policy.
type id struct {
	tag  uint64 // the READY tag
	id2  uint64
	home uint64
}

func (t *Table) idOf(pol uint16, key string) id {
	p := uint64(pol) + 1
	h1 := hash(t.seed1^p*m3, key)
	h2 := hash(t.seed2^p*m4, key)
	return id{
		tag:  uint64(stReady)<<62 | uint64(pol)<<50 | h1&hashMask,
		id2:  h2,
		home: (h1 >> 14) & t.mask,
	}
}

func (t *Table) busyTag(tag uint64) uint64 {
	return uint64(stBusy)<<62 | t.pid<<30 | tag&low30
}

func state(tag uint64) uint64 { return tag >> 62 }
func busyPid(tag uint64) int  { return int(tag >> 30 & (1<<32 - 1)) }

// find returns the slot of k, or -1.
func (t *Table) find(k id) int {
	for d := uint64(0); d < neighbourhood; d++ {
		i := (k.home + d) & t.mask
		s := &t.slots[i]
	again:
		tag := s.tag.Load()
		switch state(tag) {
		case stEmpty:
			return -1
		case stReady:
			if tag == k.tag && s.id2.Load() == k.id2 {
				return int(i)
			}
		case stBusy:
			if tag&low30 == k.tag&low30 && t.waitBusy(s, tag) {
				goto again
			}
		}
	}
	return -1
}

// busyWait bounds how long a process waits for a BUSY slot of a live
// process (one stopped by SIGSTOP, say) before it passes it by.
const busyWait = 100 * time.Millisecond

// waitBusy waits until s's tag is no longer tag and reports true, or, when
// the owner is alive but does not finish within busyWait, reports false.
// A slot whose owner has died is reclaimed on the way.
func (t *Table) waitBusy(s *slot, tag uint64) bool {
	var start time.Time
	for n := 0; ; n++ {
		if s.tag.Load() != tag {
			return true
		}
		if n < 64 {
			continue
		}
		runtime.Gosched()
		if n%256 != 0 {
			continue
		}
		if dead(busyPid(tag)) {
			if s.tag.CompareAndSwap(tag, tomb) {
				t.live.Add(-1)
			}
			return true
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) > busyWait {
			return false
		}
	}
}

// dead reports whether no process has the pid.
func dead(pid int) bool {
	return pid != os.Getpid() && unix.Kill(pid, 0) == unix.ESRCH
}

// ReclaimDead frees every slot and policy entry left BUSY by the process
// pid, which must be dead (reaped): the supervisor calls it for each worker
// that exits, so that a worker killed in the middle of an insert leaves no
// slot claimed for ever. It returns how many it freed.
//
// It reads only the pages of the table that are in memory (mincore): a
// page no process has written holds no key, and reading it would make the
// kernel allocate it, so a scan of a table at its cap would cost the
// memory of the whole table.
func (t *Table) ReclaimDead(pid int) int {
	n := 0
	page := os.Getpagesize()
	base := headerSize + MaxPolicies*polSize
	area := t.mem[base:]
	vec := make([]byte, (len(area)+page-1)/page)
	if err := mincore(area, vec); err != nil {
		for i := range vec {
			vec[i] = 1 // scan everything rather than miss a claim
		}
	}
	perPage := page / slotSize
	for pg, v := range vec {
		if v&1 == 0 {
			continue
		}
		for i := pg * perPage; i < min((pg+1)*perPage, len(t.slots)); i++ {
			s := &t.slots[i]
			if tag := s.tag.Load(); state(tag) == stBusy && busyPid(tag) == pid {
				if s.tag.CompareAndSwap(tag, tomb) {
					t.live.Add(-1)
					n++
				}
			}
		}
	}
	for i := range t.pols {
		e := &t.pols[i]
		if st := e.state.Load(); st>>62 == stBusy && busyPid(st) == pid {
			if e.state.CompareAndSwap(st, 0) {
				n++
			}
		}
	}
	return n
}

// Stats is what [Table.Check] counts.
type Stats struct {
	Live  int // the live counter
	Ready int // slots holding a key
	Busy  int // slots being filled (or left so by a dead process)
	Tomb  int // freed slots
}

// Check scans the table and reports what it holds, and an error if two
// slots hold the same key (the insert protocol failed). It is for tests
// and diagnostics: a full scan.
func (t *Table) Check() (Stats, error) {
	st := Stats{Live: int(t.live.Load())}
	seen := make(map[[2]uint64]int)
	var dup error
	for i := range t.slots {
		s := &t.slots[i]
		tag := s.tag.Load()
		switch state(tag) {
		case stReady:
			st.Ready++
			k := [2]uint64{tag, s.id2.Load()}
			if j, ok := seen[k]; ok && dup == nil {
				dup = fmt.Errorf("shmtable: slots %d and %d hold the same key", j, i)
			}
			seen[k] = i
		case stBusy:
			st.Busy++
		case stTomb:
			st.Tomb++
		}
	}
	return st, dup
}

// HoldClaim claims a slot for key under p and leaves it BUSY, as a process
// killed in the middle of an insert leaves it: for tests of what others do
// then (the process calling it is meant to die next).
func (s *Store) HoldClaim(p ratelimit.Policy, key string) error {
	pol, err := s.policyID(p)
	if err != nil {
		return err
	}
	k := s.t.idOf(pol, key)
	free, freeTag, at, _ := s.t.scan(k)
	if at >= 0 || free < 0 {
		return errors.New("shmtable: HoldClaim: the key exists, or no free slot")
	}
	s.t.live.Add(1)
	if !s.t.slots[free].tag.CompareAndSwap(freeTag, s.t.busyTag(k.tag)) {
		return errors.New("shmtable: HoldClaim: lost the slot")
	}
	return nil
}
