//go:build unix

// Package shmring is a ring of log lines in memory shared by two
// processes: the goroutines of one process (a cluster worker) append
// records of whole lines, and one other process (the supervisor) drains
// them into a file. It is the log path that a crash of the writing process
// cannot lose: a record is in memory the other process holds from the
// moment [Writer.Write] returns, without a system call per record.
//
// # Layout
//
// The mapping is a header page followed by the data area, whose size is a
// power of two. The header holds, each on its own cache line so that the
// writer and the reader do not share one: head (the position after the
// last record written, and the writer's lock), tail (the position after
// the last byte drained, written by the reader), armed (the reader wants a
// wake-up) and dropped (records the writer gave up on). Positions are
// absolute byte offsets that only grow (63 bits do not wrap in the life of
// a process); a position's place in the data area is the position modulo
// the size. The data area holds the records' bytes back to back, as they
// go to the file: a record is one or more whole lines, and the Writer
// ends one that does not end in a newline with one.
//
// # Writing, and what a crash leaves
//
// A Writer takes the lock, the top bit of head, with a compare-and-swap;
// copies the record after head; and stores the new head, which publishes
// the record and releases the lock in one atomic store. Everything below
// head is therefore whole, whatever moment the writing process died at: a
// process killed in the middle of a copy leaves its bytes beyond head,
// where the reader never looks, and the lock bit set, which the reader
// ignores (and reports, see [Reader.Interrupted]). There is no torn record
// to detect: a record is in the ring whole or not at all, and the reader
// needs no per-record framing, so it hands the file the bytes where they
// lie, without copying them.
//
// Copies are serialised by the lock, as the writers of a log are anyway
// (a slog handler writes under a mutex of its own). The lock costs one
// compare-and-swap, as a sync.Mutex would, and a dead process holds it
// against nobody: the reader never takes it. Goroutines that find it taken
// queue on a sync.Mutex of the Writer, so that one at a time spins on the
// bit, yielding its processor between tries (the holder may have been
// preempted in the middle of its copy), while the others sleep.
//
// # A full ring
//
// A Write that does not fit releases the lock and waits for the reader up
// to the Writer's wait bound, waking it through the bell (see below), and
// then gives up: it counts the record in dropped (which the reader
// reports) and returns [ErrFull]. While the ring stays as full as when a
// write gave up (the reader has freed nothing since), later writes give up
// at once instead of each waiting the bound again.
//
// # The bell
//
// The reader drains on a timer and when rung: a Writer whose record takes
// the ring past half full, or that has to wait, writes one byte to the
// bell (a non-blocking pipe) if the reader armed it, and disarms it. The
// reader arms it again after each drain, so the bell costs at most one
// write(2) per drain, never one per record.
//
// # Memory
//
// The shared words (head, tail, armed, dropped) are reached only through
// sync/atomic operations on the mapping, and those operations order the
// plain copies of the records: the writer's copy comes before its atomic
// store of head, and the reader reads only what is below the head it
// loaded; the reader is done with those bytes before its store of tail,
// below which the writer then reuses the space. No Go pointer is ever
// stored in the mapping. The reader trusts nothing it reads there: a head
// behind the tail or more than a ring ahead makes [Reader.Drain] return
// [ErrCorrupt], never read out of bounds. On Linux the file is a sealed
// memfd whose size the writing process cannot change, so the reader's
// mapping cannot be cut under it.
package shmring

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/shipshape-go/shipshape/internal/shm"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Errors of [Writer.Write] and [Reader.Drain].
var (
	// ErrFull is returned by a Write that gave up waiting for room; the
	// record is counted in [Ring.Dropped].
	ErrFull = errors.New("shmring: ring full; record dropped")
	// ErrTooLarge is returned by a Write of a record that cannot fit in
	// the ring at all; it is counted in [Ring.Dropped].
	ErrTooLarge = errors.New("shmring: record larger than the ring; record dropped")
	// ErrCorrupt is returned by Drain when the ring holds what no Writer
	// writes: a head behind the tail or more than a ring ahead of it.
	// Nothing more is read from such a ring.
	ErrCorrupt = errors.New("shmring: ring corrupted")
)

// Sizes of the data area.
const (
	MinSize = 4 << 10
	MaxSize = 1 << 30
)

const (
	magic = 0x31676e69726d6873 // "shmring1" in little-endian bytes

	offMagic   = 0
	offSize    = 8
	offHead    = 64
	offTail    = 128
	offArmed   = 192
	offDropped = 256
	headerSize = 4096 // one page: the data area starts page-aligned

	lockBit = 1 << 63 // of head: a writer is copying a record
)

// Ring is a mapping of a ring. The writing process makes a [Writer] on it,
// the reading process a [Reader]; Close unmaps it.
type Ring struct {
	mem     []byte // the whole mapping
	data    []byte // the data area
	size    uint64 // len(data), a power of two
	mask    uint64
	head    *atomic.Uint64
	tail    *atomic.Uint64
	armed   *atomic.Uint32
	dropped *atomic.Uint64
	closed  atomic.Bool
}

// validSize reports whether size is a power of two between MinSize and
// MaxSize.
func validSize(size int) bool {
	return size >= MinSize && size <= MaxSize && size&(size-1) == 0
}

// Create makes a ring with a data area of size bytes (a power of two
// between [MinSize] and [MaxSize]) in a new anonymous shared-memory file
// named after name, and maps it. The file is what another process maps
// with [Map] (hand it down as an inherited descriptor); close it once
// that process has it: the mapping stays. The ring starts empty and armed.
func Create(name string, size int) (*os.File, *Ring, error) {
	if !validSize(size) {
		return nil, nil, fmt.Errorf("shmring: size %d, want a power of two between %d and %d", size, MinSize, MaxSize)
	}
	f, err := shm.Create(name, int64(headerSize+size))
	if err != nil {
		return nil, nil, fmt.Errorf("shmring: %w", err)
	}
	r, err := mapFile(f, headerSize+size)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r.word64(offSize).Store(uint64(size))
	r.armed.Store(1)
	r.word64(offMagic).Store(magic) // last: a ring is valid once it is set
	r.setSize(uint64(size))
	return f, r, nil
}

// Map maps the ring in f, made by [Create] in another process.
func Map(f *os.File) (*Ring, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shmring: %w", err)
	}
	total := st.Size()
	if total < headerSize+MinSize || total > headerSize+MaxSize || !validSize(int(total-headerSize)) {
		return nil, fmt.Errorf("shmring: %s: size %d is not that of a ring", f.Name(), total)
	}
	r, err := mapFile(f, int(total))
	if err != nil {
		return nil, err
	}
	size := uint64(total - headerSize)
	if r.word64(offMagic).Load() != magic || r.word64(offSize).Load() != size {
		r.Close()
		return nil, fmt.Errorf("shmring: %s is not a ring", f.Name())
	}
	r.setSize(size)
	return r, nil
}

func mapFile(f *os.File, total int) (*Ring, error) {
	mem, err := shm.Map(f, total)
	if err != nil {
		return nil, fmt.Errorf("shmring: %w", err)
	}
	r := &Ring{mem: mem}
	r.head = r.word64(offHead)
	r.tail = r.word64(offTail)
	r.armed = (*atomic.Uint32)(unsafe.Pointer(&mem[offArmed]))
	r.dropped = r.word64(offDropped)
	return r, nil
}

// word64 is the shared word at offset off of the header page.
func (r *Ring) word64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.mem[off]))
}

// setSize sets the size this process uses, which it never reads again from
// the shared header (the other process could change that).
func (r *Ring) setSize(size uint64) {
	r.size, r.mask = size, size-1
	r.data = r.mem[headerSize : headerSize+size]
}

// Size returns the size of the data area in bytes.
func (r *Ring) Size() int { return int(r.size) }

// Dropped returns the number of records writers gave up on so far
// ([ErrFull], [ErrTooLarge]). The count lives in the ring, so the reader
// sees what the writing process dropped, even after it died.
func (r *Ring) Dropped() uint64 { return r.dropped.Load() }

// Close unmaps the ring; nothing may use it afterwards. It is safe to call
// more than once.
func (r *Ring) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if err := unix.Munmap(r.mem); err != nil {
		return fmt.Errorf("shmring: munmap: %w", err)
	}
	return nil
}

// Writer appends records to a ring; it is safe for concurrent use by the
// goroutines of one process. Use one Writer per ring in one process.
type Writer struct {
	r    *Ring
	bell int // write end of the reader's bell (non-blocking), or -1
	wait time.Duration
	// stalled is tail+1 when a write last gave up on a full ring; 0: none.
	stalled atomic.Uint64
	mu      sync.Mutex // queues the goroutines that found the lock taken
}

// bellByte is what a Writer writes to the bell.
var bellByte = [1]byte{1}

// NewWriter returns the Writer of r. bell is the write end of the reader's
// bell, non-blocking when os.NewFile wrapped it (so that Fd leaves it so),
// or nil; wait bounds how long a Write waits for room in a full ring (0:
// it gives up at once).
func NewWriter(r *Ring, bell *os.File, wait time.Duration) *Writer {
	w := &Writer{r: r, bell: -1, wait: wait}
	if bell != nil {
		w.bell = int(bell.Fd())
	}
	return w
}

// Write appends p to the ring as one record, followed by a newline unless
// p ends in one: the reader gets it whole or, if the process dies while it
// is copied, not at all. It returns [ErrFull] when the ring stayed full
// for the wait bound and [ErrTooLarge] when p can never fit (it needs the
// size of the ring, less one byte for a missing newline); both drop the
// record and count it in [Ring.Dropped]. An empty p writes nothing.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	r := w.r
	need := uint64(n)
	nl := p[n-1] != '\n'
	if nl {
		need++
	}
	if need > r.size {
		r.dropped.Add(1)
		return 0, ErrTooLarge
	}
	h := w.lock()
	t := r.tail.Load()
	if h+need-t > r.size {
		r.head.Store(h) // unlock, and wait for room without the lock
		var err error
		if h, t, err = w.waitRoom(need); err != nil {
			r.dropped.Add(1)
			return 0, err
		}
	}
	off := h & r.mask
	if c := copy(r.data[off:], p); c < n {
		copy(r.data, p[c:])
	}
	if nl {
		r.data[(h+uint64(n))&r.mask] = '\n'
	}
	r.head.Store(h + need) // publishes the record and unlocks
	if h+need-t > r.size/2 {
		w.ring()
	}
	return n, nil
}

// lock takes the lock bit of head and returns head. A goroutine that finds
// it taken queues on a mutex of the Writer, so that one of them at a time
// spins on the bit (yielding its processor between tries: the holder may
// have been preempted in its copy) and the others sleep.
func (w *Writer) lock() uint64 {
	if h := w.r.head.Load(); h&lockBit == 0 && w.r.head.CompareAndSwap(h, h|lockBit) {
		return h
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 0; ; i++ {
		if h := w.r.head.Load(); h&lockBit == 0 && w.r.head.CompareAndSwap(h, h|lockBit) {
			return h
		}
		if i >= 10 {
			runtime.Gosched()
		}
	}
}

// waitRoom waits until need bytes fit and returns, holding the lock, head
// and the tail then. It gives up after the wait bound, or at once when an
// earlier write gave up and the reader has freed nothing since.
func (w *Writer) waitRoom(need uint64) (uint64, uint64, error) {
	r := w.r
	if w.stalled.Load() == r.tail.Load()+1 {
		return 0, 0, ErrFull
	}
	w.ring()
	deadline := time.Now().Add(w.wait)
	sleep := 20 * time.Microsecond
	for i := 0; ; i++ {
		if i < 50 {
			runtime.Gosched()
		} else {
			time.Sleep(min(sleep, time.Until(deadline)))
			sleep = min(2*sleep, 200*time.Microsecond)
		}
		if t := r.tail.Load(); r.head.Load()&^lockBit+need-t <= r.size {
			h := w.lock()
			if t = r.tail.Load(); h+need-t <= r.size {
				w.stalled.Store(0)
				return h, t, nil
			}
			r.head.Store(h) // another writer took the room first
		}
		w.ring()
		if !time.Now().Before(deadline) {
			w.stalled.Store(r.tail.Load() + 1)
			return 0, 0, ErrFull
		}
	}
}

// ring wakes the reader if it armed the bell.
func (w *Writer) ring() {
	if w.bell >= 0 && w.r.armed.Load() == 1 && w.r.armed.CompareAndSwap(1, 0) {
		// EAGAIN: the pipe is full of unread rings; the reader will wake.
		_, _ = unix.Write(w.bell, bellByte[:])
	}
}

// DieWriting takes the lock and copies the first half of a record of n
// bytes, and never finishes: what a Writer leaves when its process is
// killed in the middle of a copy. Every later Write waits for the lock
// forever, so the process must be killed (or the Writer dropped) after it.
// It is for the tests of readers, here and in the packages that use the
// ring; n must fit in the ring as it is.
func (w *Writer) DieWriting(n int) {
	h := w.lock()
	for i := range uint64(n / 2) {
		w.r.data[(h+i)&w.r.mask] = 'x'
	}
}

// Scribble sets head more than a ring ahead of the tail, as a writing
// process that scribbled over the ring's header would. It is for the
// tests of readers, here and in the packages that use the ring.
func (w *Writer) Scribble() { w.r.head.Store(w.r.tail.Load() + 2*w.r.size) }

// Reader drains a ring. It is not safe for concurrent use: one goroutine
// of one process drains a ring.
type Reader struct {
	r       *Ring
	tail    uint64
	err     error
	scratch []byte // a line across the end of the data area
}

// NewReader returns the Reader of r, which must be empty or drained only
// by this Reader so far (the Ring of [Create]).
func NewReader(r *Ring) *Reader { return &Reader{r: r, tail: r.tail.Load()} }

// Drain hands fn, in order, the bytes written after the read position, in
// chunks of whole lines: each chunk ends at a record's end or a newline,
// and holds at most limit bytes unless a single line is longer. A chunk lies
// in the ring (or, for a line across the end of the data area, in a buffer
// of the Reader): fn must be done with it when it returns, and its space
// is then the writer's again, whatever fn returned. Drain returns the
// number of bytes handed over and arms the bell. It returns [ErrCorrupt]
// when the ring holds what no Writer writes, and then on every later
// call; the first error of fn stops it and is returned.
func (rd *Reader) Drain(limit int, fn func(chunk []byte) error) (int, error) {
	if rd.err != nil {
		return 0, rd.err
	}
	r := rd.r
	h := r.head.Load() &^ lockBit
	if h < rd.tail || h-rd.tail > r.size {
		rd.err = fmt.Errorf("%w: head %d, tail %d, size %d", ErrCorrupt, h, rd.tail, r.size)
		return 0, rd.err
	}
	total := 0
	var err error
	for rd.tail < h && err == nil {
		chunk := rd.next(h, uint64(max(limit, 1)))
		err = fn(chunk)
		total += len(chunk)
		rd.tail += uint64(len(chunk))
		r.tail.Store(rd.tail)
	}
	r.armed.Store(1)
	return total, err
}

// next returns the chunk at the read position, below h.
func (rd *Reader) next(h, max uint64) []byte {
	r := rd.r
	off := rd.tail & r.mask
	avail := h - rd.tail
	end := min(off+avail, r.size) // contiguous up to here
	if end-off <= max && (end-off == avail || r.data[end-1] == '\n') {
		return r.data[off:end] // up to h, or up to the end of the area on a line's end
	}
	if i := bytes.LastIndexByte(r.data[off:min(end, off+max)], '\n'); i >= 0 {
		return r.data[off : off+uint64(i)+1]
	}
	// One line longer than max, or across the end of the area: up to its
	// newline, or up to h (a record ends at a newline, but the ring is
	// not to be trusted), through the scratch buffer when it wraps.
	if i := bytes.IndexByte(r.data[off:end], '\n'); i >= 0 {
		return r.data[off : off+uint64(i)+1]
	}
	if end-off == avail {
		return r.data[off:end]
	}
	rest := r.data[:avail-(end-off)]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i+1]
	}
	rd.scratch = append(append(rd.scratch[:0], r.data[off:end]...), rest...)
	return rd.scratch
}

// Pending reports whether records are written beyond the read position:
// a Drain now has something to take.
func (rd *Reader) Pending() bool { return rd.r.head.Load()&^lockBit != rd.tail }

// Interrupted reports whether a writer holds the lock: once the writing
// process is gone, that it died in the middle of a record, which is not
// in the ring.
func (rd *Reader) Interrupted() bool { return rd.r.head.Load()&lockBit != 0 }
