package logfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shipshape-go/shipshape/internal/errlog"
	"github.com/shipshape-go/shipshape/internal/nilcheck"
)

// Defaults of [NewBufferedWriter].
const (
	DefaultBufferSize    = 64 << 10
	DefaultFlushInterval = time.Second
	DefaultQueueSize     = 8
)

type bufferConfig struct {
	size     int
	interval time.Duration
	queue    int
	drop     bool
}

// minFlushInterval is the shortest flush interval: a shorter one is taken
// for a mistake (WithFlushInterval(1) is 1ns) that would keep a core busy.
const minFlushInterval = time.Millisecond

// WithBufferSize sets the batch size: a batch is handed to the background
// writer once it holds n bytes (default [DefaultBufferSize], 64 KiB; n
// below 1 is an error). An option of [NewBufferedWriter].
func WithBufferSize(n int) Option {
	return func(o *options) {
		o.set(forBuffer, "WithBufferSize", func() error {
			if n < 1 {
				return errors.New("logfile: buffer size must be >= 1")
			}
			o.buffer.size = n
			return nil
		})
	}
}

// WithFlushInterval bounds how long a line waits in a partly filled batch
// (default [DefaultFlushInterval], 1s; below 1ms is an error). An option
// of [NewBufferedWriter].
func WithFlushInterval(d time.Duration) Option {
	return func(o *options) {
		o.set(forBuffer, "WithFlushInterval", func() error {
			if d < minFlushInterval {
				return fmt.Errorf("logfile: flush interval must be >= %v", minFlushInterval)
			}
			o.buffer.interval = d
			return nil
		})
	}
}

// WithQueueSize sets how many full batches may wait for the background
// writer (default [DefaultQueueSize]; below 1 is an error). When they all
// wait, Write blocks, or drops with [WithDropWhenFull]. An option of
// [NewBufferedWriter].
func WithQueueSize(n int) Option {
	return func(o *options) {
		o.set(forBuffer, "WithQueueSize", func() error {
			if n < 1 {
				return errors.New("logfile: queue size must be >= 1")
			}
			o.buffer.queue = n
			return nil
		})
	}
}

// WithDropWhenFull makes Write discard the line, and count it in
// [BufferedWriter.Dropped], instead of blocking when the queue is full: the
// requests are never slowed down by a slow disk, at the price of lines.
// The default (false) is lossless: Write blocks until there is room. An
// option of [NewBufferedWriter].
func WithDropWhenFull(drop bool) Option {
	return func(o *options) {
		o.set(forBuffer, "WithDropWhenFull", func() error {
			o.buffer.drop = drop
			return nil
		})
	}
}

// BufferedWriter batches writes to an io.Writer: Write copies p into the
// current batch and returns; a background goroutine writes full batches,
// and the partly filled one every flush interval, in order, one Write call
// per batch. Each Write lands whole in one batch, so lines written whole
// stay whole. It is safe for concurrent use.
//
// A failed background write loses its batch: the lines are counted in
// [BufferedWriter.Dropped] and the error is reported at most once per 10s
// (see [WithLogger]); writers are not told, so requests keep being served
// on a full disk. On a [File], that covers the batches the File refused
// (its directory gone for good); the batches it wrote into a deleted file
// before it noticed are counted in [File.Dropped], in batches. Together
// the two count every line lost.
//
// # What a crash loses
//
// The lines it holds. Close (or Flush) before the program exits: a
// process killed with kill -9, by the OOM killer or by an unrecovered
// panic loses every line written to the BufferedWriter since its last
// background write. That is the batch being filled, up to the buffer size
// ([WithBufferSize], 64 KiB by default, some 500 access lines) and at most
// one flush interval of lines ([WithFlushInterval], 1s), plus, when the
// underlying writer is slower than the writers, the full batches waiting
// for it (up to [WithQueueSize] more). Where no line may be lost to a
// crash of the process, write to a [File] directly: it keeps nothing, at
// the price of a write(2) per line. A worker of cluster's supervisor has a
// way that costs no more than a BufferedWriter: cluster.LogWriter copies
// each line into memory the supervisor holds, and the supervisor writes
// it to the one file of the service (cluster.WithLog).
//
// Close does not close the underlying writer.
type BufferedWriter struct {
	w    io.Writer
	cfg  bufferConfig
	errs *errlog.Reporter

	// wmu serialises writes to w, which keeps batches in order: whoever
	// holds it takes everything queued so far.
	wmu sync.Mutex

	mu      sync.Mutex
	room    sync.Cond // signalled when the queue shrinks or on Close
	cur     batch
	queue   []batch
	closed  bool
	pool    [][]byte // spare batch buffers
	dropped atomic.Int64
	written atomic.Int64 // lines, for the metrics (see WithMeterProvider)
	// unobserve stops the metrics at Close.
	unobserve func()

	kick      chan struct{} // a full batch is queued
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// reports counts the goroutines that hand reports to the logger (see
	// WithLogger); Close waits for them.
	reports reportGroup
}

type batch struct {
	b     []byte
	lines int64 // Write calls in b, counted as dropped if writing b fails
}

// NewBufferedWriter returns a BufferedWriter on w and starts its background
// writer; Close stops it. A nil w and every invalid option (nil, out of
// range, or one of [Open]) are errors.
func NewBufferedWriter(w io.Writer, opts ...Option) (*BufferedWriter, error) {
	if nilcheck.Is(w) {
		return nil, errors.New("logfile: writer is nil")
	}
	o := options{target: forBuffer, buffer: bufferConfig{
		size:     DefaultBufferSize,
		interval: DefaultFlushInterval,
		queue:    DefaultQueueSize,
	}}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	bw := &BufferedWriter{
		w:    w,
		cfg:  o.buffer,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	bw.errs = errlog.New(newAsyncLogger(o.logger, &bw.reports), "logfile: buffered write failed", 0)
	bw.room.L = &bw.mu
	bw.cur.b = make([]byte, 0, bw.cfg.size)
	var err error
	if bw.unobserve, err = observeBuffer(o.meter, bw); err != nil {
		return nil, fmt.Errorf("logfile: WithMeterProvider: %w", err)
	}
	go bw.run()
	return bw, nil
}

// Write copies p into the current batch. It blocks while the queue of full
// batches is full, unless [WithDropWhenFull] was given, in which case it
// drops p, counts it and returns len(p), nil. After Close it returns
// [ErrClosed].
func (bw *BufferedWriter) Write(p []byte) (int, error) {
	bw.mu.Lock()
	for {
		if bw.closed {
			bw.mu.Unlock()
			return 0, ErrClosed
		}
		if len(bw.cur.b) == 0 || len(bw.cur.b)+len(p) <= bw.cfg.size {
			break
		}
		// p does not fit: queue the current batch first.
		if len(bw.queue) < bw.cfg.queue {
			bw.enqueueLocked()
			break
		}
		if bw.cfg.drop {
			bw.mu.Unlock()
			bw.dropped.Add(1)
			return len(p), nil
		}
		bw.room.Wait()
	}
	bw.cur.b = append(bw.cur.b, p...)
	bw.cur.lines++
	if len(bw.cur.b) >= bw.cfg.size && len(bw.queue) < bw.cfg.queue {
		bw.enqueueLocked()
	}
	bw.mu.Unlock()
	return len(p), nil
}

// enqueueLocked moves the current batch to the queue and wakes the writer.
func (bw *BufferedWriter) enqueueLocked() {
	bw.queue = append(bw.queue, bw.cur)
	bw.cur = batch{b: bw.spareLocked()}
	select {
	case bw.kick <- struct{}{}:
	default:
	}
}

func (bw *BufferedWriter) spareLocked() []byte {
	if n := len(bw.pool); n > 0 {
		b := bw.pool[n-1]
		bw.pool = bw.pool[:n-1]
		return b
	}
	return make([]byte, 0, bw.cfg.size)
}

// Dropped returns the number of writes discarded so far: refused because
// the queue was full ([WithDropWhenFull]) or lost in a failed write.
func (bw *BufferedWriter) Dropped() int64 { return bw.dropped.Load() }

// Flush writes everything written so far to the underlying writer before
// it returns, and returns the first error of those writes.
func (bw *BufferedWriter) Flush() error {
	return bw.flush(true)
}

// flush writes the queued batches, and the current one if all is set.
func (bw *BufferedWriter) flush(all bool) error {
	bw.wmu.Lock()
	defer bw.wmu.Unlock()
	bw.mu.Lock()
	batches := bw.queue
	bw.queue = nil
	if all && len(bw.cur.b) > 0 {
		batches = append(batches, bw.cur)
		bw.cur = batch{b: bw.spareLocked()}
	}
	if len(batches) > 0 {
		bw.room.Broadcast()
	}
	bw.mu.Unlock()

	var first error
	for _, b := range batches {
		if _, err := bw.w.Write(b.b); err != nil {
			bw.dropped.Add(b.lines)
			bw.errs.Report(context.Background(), err, slog.Int64("lines", b.lines))
			if first == nil {
				first = err
			}
			continue
		}
		bw.written.Add(b.lines)
	}
	if len(batches) > 0 {
		bw.mu.Lock()
		for _, b := range batches {
			if cap(b.b) <= 2*bw.cfg.size && len(bw.pool) < bw.cfg.queue+1 {
				bw.pool = append(bw.pool, b.b[:0])
			}
		}
		bw.mu.Unlock()
	}
	return first
}

func (bw *BufferedWriter) run() {
	defer close(bw.done)
	t := time.NewTicker(bw.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-bw.kick:
			_ = bw.flush(false)
		case <-t.C:
			_ = bw.flush(true)
		case <-bw.stop:
			return
		}
	}
}

// Close stops the background writer, writes everything buffered and
// returns the first error of those writes; it waits for the reports under
// way (see [WithLogger]). Writes after Close, and writes
// blocked in a full queue when it is called, return [ErrClosed]. It is safe
// to call more than once; later calls return nil. It does not close the
// underlying writer.
func (bw *BufferedWriter) Close() error {
	var err error
	bw.closeOnce.Do(func() {
		// Reports under way may be writing into this BufferedWriter: let
		// them land in its last batch.
		bw.reports.Wait()
		bw.mu.Lock()
		bw.closed = true
		bw.room.Broadcast()
		bw.mu.Unlock()
		close(bw.stop)
		<-bw.done
		err = bw.flush(true)
		bw.reports.Wait()
		bw.unobserve()
	})
	return err
}
