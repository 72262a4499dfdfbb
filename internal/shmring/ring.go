//go:build unix

// Package shmring is a ring of records in memory shared by two processes:
// the goroutines of one process (a cluster worker) append records, and one
// other process (the supervisor) drains them. It is the log path that a
// crash of the writing process cannot lose: a record is in memory the
// other process holds from the moment [Writer.Write] returns, without a
// system call per record.
//
// # Layout
//
// The mapping is a header page followed by the data area, whose size is a
// power of two. The header holds, each on its own cache line so that the
// writer and the reader do not share one: head (the position after the last
// reserved record, written by the writer), tail (the position after the
// last record drained, written by the reader), armed (the reader wants a
// wake-up) and dropped (records the writer gave up on). Positions are
// absolute byte offsets that only grow (a uint64 does not wrap in the life
// of a process); a position's place in the data area is the position
// modulo the size.
//
// A record is an 8-byte header word and the payload, padded to 8 bytes;
// the header word never straddles the end of the data area, the payload
// may (it is copied in two pieces). The header word holds the payload's
// length and a committed bit.
//
// # Writing, and what a crash leaves
//
// A Writer reserves a record under a mutex of its process: it stores the
// header word (length, not committed) and then advances head. It copies
// the payload after it released the mutex and then sets the committed bit,
// so that goroutines copy their records at the same time. The two stores
// of the reservation are ordered, and sync/atomic's operations are
// sequentially consistent, so a reader that sees head past a record sees
// its header word: every record below head has its length, whatever
// moment the process died at. A process killed between a reservation and
// its commit leaves a record that is reserved and never committed (torn):
// the reader skips it by its length after the writer is gone
// ([Reader.Drain] with final set) and goes on with the committed records
// after it. While the writer lives, the reader stops at a record not yet
// committed and takes it at the next drain.
//
// The mutex is the writing process's own: the reader never takes it, so a
// writer that dies holding it blocks nobody. Records are read in the order
// they were reserved.
//
// # A full ring
//
// A Write that does not fit waits for the reader up to the Writer's wait
// bound, waking it through the bell (see below), and then gives up: it
// counts the record in dropped (which the reader reports) and returns
// [ErrFull]. While the ring stays as full as when a write gave up (the
// reader has freed nothing since), later writes give up at once instead
// of each waiting the bound again.
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
// The mapping is reached only through sync/atomic operations on its
// 8-byte words (header words, head, tail, counters) and copies of payload
// bytes that those operations order; no Go pointer is ever stored in it.
// The reader trusts nothing it reads there: a length or head that cannot
// be right makes [Reader.Drain] return [ErrCorrupt], never read out of
// bounds. On Linux the data area is a sealed memfd whose size the writer
// cannot change, so the reader's mapping cannot be cut under it.
package shmring

import (
	"errors"
	"fmt"
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
	// writes: a head behind the tail or too far ahead, a length that does
	// not fit. Nothing more is read from such a ring.
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

	wordSize  = 8
	lenMask   = 1<<32 - 1
	committed = 1 << 32
	// MaxRecord is the largest payload of one record; the ring must be
	// bigger still (a record takes its length plus 8 bytes, padded to 8).
	MaxRecord = lenMask
)

// Ring is a mapping of a ring. The writing process makes a [Writer] on it,
// the reading process a [Reader]; Close unmaps it.
type Ring struct {
	mem     []byte // the whole mapping
	data    []byte // mem[headerSize:]
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
	f, err := createFile(name, int64(headerSize+size))
	if err != nil {
		return nil, nil, fmt.Errorf("shmring: %w", err)
	}
	r, err := mapFile(f, headerSize+size)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	(*atomic.Uint64)(unsafe.Pointer(&r.mem[offSize])).Store(uint64(size))
	r.armed.Store(1)
	// The magic last: a ring is valid once it is set.
	(*atomic.Uint64)(unsafe.Pointer(&r.mem[offMagic])).Store(magic)
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
	if (*atomic.Uint64)(unsafe.Pointer(&r.mem[offMagic])).Load() != magic ||
		(*atomic.Uint64)(unsafe.Pointer(&r.mem[offSize])).Load() != size {
		r.Close()
		return nil, fmt.Errorf("shmring: %s is not a ring", f.Name())
	}
	r.setSize(size)
	return r, nil
}

func mapFile(f *os.File, total int) (*Ring, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("shmring: %w", err)
	}
	var mem []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		mem, merr = unix.Mmap(int(fd), 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}); err != nil {
		return nil, fmt.Errorf("shmring: %w", err)
	}
	if merr != nil {
		return nil, fmt.Errorf("shmring: mmap: %w", merr)
	}
	r := &Ring{mem: mem, data: mem[headerSize:]}
	r.head = (*atomic.Uint64)(unsafe.Pointer(&mem[offHead]))
	r.tail = (*atomic.Uint64)(unsafe.Pointer(&mem[offTail]))
	r.armed = (*atomic.Uint32)(unsafe.Pointer(&mem[offArmed]))
	r.dropped = (*atomic.Uint64)(unsafe.Pointer(&mem[offDropped]))
	return r, nil
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

// word is the 8-byte word at pos (a multiple of 8).
func (r *Ring) word(pos uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.data[pos&r.mask]))
}

// recordSize is the space a record of n payload bytes takes.
func recordSize(n int) uint64 {
	return wordSize + (uint64(n)+wordSize-1)&^(wordSize-1)
}

// Writer appends records to a ring; it is safe for concurrent use by the
// goroutines of one process. Use one Writer per ring: the reservation
// mutex is the Writer's.
type Writer struct {
	r    *Ring
	bell int // write end of the reader's bell (non-blocking), or -1
	wait time.Duration

	mu      sync.Mutex
	head    uint64 // the ring's head; only this Writer changes it
	stalled uint64 // tail+1 when a write last gave up on a full ring; 0: none
}

// bellByte is what a Writer writes to the bell.
var bellByte = [1]byte{1}

// NewWriter returns the Writer of r. bell is the write end of the reader's
// bell, opened non-blocking, or nil; wait bounds how long a Write waits
// for room in a full ring (0: it gives up at once).
func NewWriter(r *Ring, bell *os.File, wait time.Duration) *Writer {
	w := &Writer{r: r, bell: -1, wait: wait, head: r.head.Load()}
	if bell != nil {
		// The descriptor was non-blocking when it was wrapped by
		// os.NewFile, so Fd leaves it so.
		w.bell = int(bell.Fd())
	}
	return w
}

// Write appends p to the ring as one record; the reader gets it back whole
// or, if the process dies while it is copied, not at all. It returns
// [ErrFull] when the ring stayed full for the wait bound and [ErrTooLarge]
// when p can never fit; both drop the record and count it in
// [Ring.Dropped]. An empty p writes nothing.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	r := w.r
	rec := recordSize(n)
	if uint64(n) > MaxRecord || rec > r.size {
		r.dropped.Add(1)
		return 0, ErrTooLarge
	}
	w.mu.Lock()
	h := w.head
	t := r.tail.Load()
	if h+rec-t > r.size {
		var err error
		if t, err = w.waitLocked(h, rec); err != nil {
			w.mu.Unlock()
			r.dropped.Add(1)
			return 0, err
		}
	}
	hw := r.word(h)
	hw.Store(uint64(n)) // reserved: the length, before head covers it
	w.head = h + rec
	r.head.Store(h + rec)
	w.mu.Unlock()

	off := (h + wordSize) & r.mask
	if c := copy(r.data[off:], p); c < n {
		copy(r.data, p[c:])
	}
	hw.Store(uint64(n) | committed)
	if h+rec-t > r.size/2 {
		w.ring()
	}
	return n, nil
}

// waitLocked waits, holding w.mu, until rec bytes from h fit, and returns
// the tail then; it gives up after the wait bound, or at once when an
// earlier write gave up and the reader has freed nothing since.
func (w *Writer) waitLocked(h, rec uint64) (uint64, error) {
	r := w.r
	t := r.tail.Load()
	if w.stalled == t+1 {
		return 0, ErrFull
	}
	w.ring()
	deadline := time.Now().Add(w.wait)
	sleep := 20 * time.Microsecond
	for i := 0; ; i++ {
		if i < 50 {
			runtime.Gosched()
		} else {
			time.Sleep(min(sleep, time.Until(deadline)))
			sleep = min(2*sleep, time.Millisecond)
		}
		if t = r.tail.Load(); h+rec-t <= r.size {
			w.stalled = 0
			return t, nil
		}
		w.ring()
		if !time.Now().Before(deadline) {
			w.stalled = t + 1
			return 0, ErrFull
		}
	}
}

// ring wakes the reader if it armed the bell.
func (w *Writer) ring() {
	if w.bell >= 0 && w.r.armed.CompareAndSwap(1, 0) {
		// EAGAIN: the pipe is full of unread rings; the reader will wake.
		_, _ = unix.Write(w.bell, bellByte[:])
	}
}

// Reader drains a ring. It is not safe for concurrent use: one goroutine
// of one process drains a ring.
type Reader struct {
	r    *Ring
	tail uint64
	err  error
}

// NewReader returns the Reader of r, which must be empty or drained only
// by this Reader so far (the Ring of [Create]).
func NewReader(r *Ring) *Reader { return &Reader{r: r, tail: r.tail.Load()} }

// Stats is what one [Reader.Drain] took.
type Stats struct {
	Records int // committed records appended
	Torn    int // records skipped, reserved by a writer that died before it committed them
	Bytes   int // payload bytes appended
}

// Drain appends the payloads of the committed records from the read
// position on to dst, in order, frees their space and arms the bell. It
// stops at a record not committed yet, unless final is set: then the
// writing process is gone and such a record is torn; Drain skips it and
// goes on. It stops, too, before the payloads it appended would pass max
// bytes (it always takes at least one record), so call it again while
// Stats.Records > 0 to take everything. It returns [ErrCorrupt] (with what
// it appended before) when the ring holds what no Writer writes, and then
// on every later call.
func (rd *Reader) Drain(dst []byte, max int, final bool) ([]byte, Stats, error) {
	var st Stats
	if rd.err != nil {
		return dst, st, rd.err
	}
	r := rd.r
	t := rd.tail
	h := r.head.Load()
	if h < t || h-t > r.size || h%wordSize != 0 {
		rd.err = fmt.Errorf("%w: head %d, tail %d, size %d", ErrCorrupt, h, t, r.size)
		return dst, st, rd.err
	}
	for t < h {
		hdr := r.word(t).Load()
		n := hdr & lenMask
		rec := recordSize(int(n))
		if hdr&^(lenMask|committed) != 0 || n == 0 || rec > h-t {
			rd.err = fmt.Errorf("%w: record header %#x at %d, head %d", ErrCorrupt, hdr, t, h)
			break
		}
		if hdr&committed == 0 {
			if !final {
				break
			}
			st.Torn++
			t += rec
			continue
		}
		if st.Records > 0 && st.Bytes+int(n) > max {
			break
		}
		off := (t + wordSize) & r.mask
		end := off + n
		if end <= r.size {
			dst = append(dst, r.data[off:end]...)
		} else {
			dst = append(dst, r.data[off:]...)
			dst = append(dst, r.data[:end-r.size]...)
		}
		st.Records++
		st.Bytes += int(n)
		t += rec
	}
	// The payloads are copied out: their space is the writer's again.
	rd.tail = t
	r.tail.Store(t)
	r.armed.Store(1)
	return dst, st, rd.err
}

// Pending reports whether records are reserved beyond the read position:
// a Drain now may have something to take.
func (rd *Reader) Pending() bool { return rd.r.head.Load() != rd.tail }
