package logfile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/metric"
)

// Option configures [Open] or [NewBufferedWriter]. Each option names the
// constructor it belongs to in its documentation; [WithLogger] belongs to
// both. An option given to the other constructor is an error, not ignored.
type Option func(*options)

// target is the constructor an option belongs to.
type target uint8

const (
	forFile target = 1 << iota
	forBuffer
)

func (t target) String() string {
	switch t {
	case forFile:
		return "Open"
	case forBuffer:
		return "NewBufferedWriter"
	}
	return "Open and NewBufferedWriter"
}

// options is what the options of both constructors set; each constructor
// reads its part.
type options struct {
	target target // the constructor applying the options
	file   fileConfig
	buffer bufferConfig
	logger *slog.Logger // nil: slog.Default() at the time of each report
	meter  metric.MeterProvider
	err    error // the first invalid option
}

// set runs apply when the option named name belongs to the constructor
// applying the options, and keeps the first error.
func (o *options) set(belongs target, name string, apply func() error) {
	if o.err != nil {
		return
	}
	if o.target&belongs == 0 {
		o.err = fmt.Errorf("logfile: %s is an option of %s, not of %s", name, belongs, o.target)
		return
	}
	o.err = apply()
}

// apply applies opts for the constructor t over the defaults in o.
func (o *options) apply(opts []Option) error {
	for _, opt := range opts {
		if opt == nil {
			return errors.New("logfile: nil option")
		}
		opt(o)
		if o.err != nil {
			return o.err
		}
	}
	return nil
}

// WithLogger sets where a [File] or a [BufferedWriter] reports what it
// could not do: failed compression and pruning, reopen failures, lines
// lost to a deleted file, failed background writes. Each kind is reported
// at most once per 10s, with the number of failures in between, so that a
// broken disk does not produce a line per write. The default is
// slog.Default() at the time of each report; nil is an error.
//
// The logger may write into the very File or BufferedWriter it reports on
// (slog.Default() often does: the application's log file). Reports are
// handed to the logger from a goroutine of their own, never under the
// File's or BufferedWriter's lock, so that they cannot deadlock with the
// write that failed; Close waits for them. A report that fails because the
// file is broken is lost, once per 10s at most: it is not reported again,
// so a broken file cannot loop on its own reports. Point WithLogger at
// another output (stderr) to be sure to see them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		o.set(forFile|forBuffer, "WithLogger", func() error {
			if l == nil {
				return errors.New("logfile: logger is nil")
			}
			o.logger = l
			return nil
		})
	}
}

// asyncHandler hands each record to its logger's handler in a goroutine of
// its own and returns at once, so that a report made while a File or
// BufferedWriter holds its lock never waits for a logger that writes into
// it. errlog logs at most once per interval, so these goroutines are few;
// wg counts them for Close.
type asyncHandler struct {
	logger *slog.Logger // nil: slog.Default() at the time of the record
	fixed  slog.Handler // from WithAttrs or WithGroup; used instead of logger
	wg     *reportGroup
}

// newAsyncLogger returns a logger that reports through l (slog.Default()
// when nil) without blocking its caller.
func newAsyncLogger(l *slog.Logger, wg *reportGroup) *slog.Logger {
	return slog.New(asyncHandler{logger: l, wg: wg})
}

func (h asyncHandler) target() slog.Handler {
	switch {
	case h.fixed != nil:
		return h.fixed
	case h.logger != nil:
		return h.logger.Handler()
	}
	return slog.Default().Handler()
}

func (h asyncHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.target().Enabled(ctx, l)
}

func (h asyncHandler) Handle(ctx context.Context, r slog.Record) error {
	target := h.target()
	r = r.Clone()
	ctx = context.WithoutCancel(ctx)
	h.wg.Go(func() { _ = target.Handle(ctx, r) })
	return nil
}

func (h asyncHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return asyncHandler{fixed: h.target().WithAttrs(attrs), wg: h.wg}
}

func (h asyncHandler) WithGroup(name string) slog.Handler {
	return asyncHandler{fixed: h.target().WithGroup(name), wg: h.wg}
}

// reportGroup counts the report goroutines under way. It is a
// sync.WaitGroup that allows a report to start while Close waits (a
// WaitGroup forbids an Add from zero concurrent with Wait): a writer or the
// mill may report at any moment, and Close must still wait for whatever
// started.
type reportGroup struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond // signalled when n drops to 0; made on first use
}

// Go runs fn in a new goroutine counted by g.
func (g *reportGroup) Go(fn func()) {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
	go func() {
		defer g.done()
		fn()
	}()
}

func (g *reportGroup) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.idle != nil {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// Wait returns once no report is under way.
func (g *reportGroup) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.idle == nil {
		g.idle = sync.NewCond(&g.mu)
	}
	for g.n > 0 {
		g.idle.Wait()
	}
}
