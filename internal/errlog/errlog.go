// Package errlog reports recurring errors through slog at most once per
// interval, so that a failing dependency (a Redis outage, a full disk) is
// visible in the logs without writing one line per request.
package errlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the interval used when New gets 0.
const DefaultInterval = 10 * time.Second

// Reporter logs the first error and then at most one error per interval,
// with the number of errors suppressed since the last line. The zero value
// is not usable; it is safe for concurrent use.
type Reporter struct {
	logger   *slog.Logger
	msg      string
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// New returns a Reporter that logs msg at error level through logger
// (slog.Default() at the time of each report when logger is nil).
func New(logger *slog.Logger, msg string, interval time.Duration) *Reporter {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Reporter{logger: logger, msg: msg, interval: interval, now: time.Now}
}

// Report logs err unless an error was logged less than an interval ago, in
// which case it is only counted. It reports whether a line was written.
func (r *Reporter) Report(ctx context.Context, err error, attrs ...slog.Attr) bool {
	now := r.now()
	r.mu.Lock()
	if !r.last.IsZero() && now.Sub(r.last) < r.interval {
		r.suppressed++
		r.mu.Unlock()
		return false
	}
	suppressed := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()

	logger := r.logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	logger.LogAttrs(ctx, slog.LevelError, r.msg, attrs...)
	return true
}
