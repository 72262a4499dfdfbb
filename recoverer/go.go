package recoverer

import "context"

// Go runs fn(ctx) in a new goroutine. A panic in fn is recovered and
// reported like one in a handler — one slog error record ("panic recovered
// in goroutine", with the request id when ctx carries chi's) and one Sentry
// event — instead of crashing the process. Nothing is written to any
// response, and the access log line is not annotated (the request may be
// over).
//
// Go has no middleware to take its settings from: it uses opts when given
// (WithLogger, WithSentry; WithResponse, WithRequestScrubber and
// WithSentryHeaders do not apply), else slog.Default and the hub in ctx or
// sentry.CurrentHub, read when the panic happens. Pass the same options as
// to [New] to get the same destinations.
//
// ctx is passed to fn as is: a request's context is canceled when the
// response is done, so work that must outlive the request should get
// context.WithoutCancel(r.Context()), which keeps the request id and the
// Sentry hub. A nil fn does nothing; a nil ctx is context.Background().
func Go(ctx context.Context, fn func(ctx context.Context), opts ...Option) {
	if fn == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c := newConfig(opts)
	go func() {
		defer c.recoverGoroutine(ctx)
		fn(ctx)
	}()
}

func (c *config) recoverGoroutine(ctx context.Context) {
	p := recover()
	if p == nil {
		return
	}
	c.report(ctx, nil, p, callers())
}
