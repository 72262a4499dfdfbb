package recoverer

import "context"

// NewGo returns a function that runs fn(ctx) in a new goroutine, like the go
// statement, with a panic in fn recovered and reported like one in a
// handler — one slog error record ("panic recovered in goroutine", with the
// request id when ctx carries chi's) and the [Panic] to the [Reporter] —
// instead of crashing the process. Nothing is written to any response, and
// the access log line is not annotated (the request may be over).
//
// NewGo takes the options of [New], so that one slice of options gives both
// the same destinations; [WithProblemWriter] does not apply. It returns an
// error for an invalid option, as New does: options are checked once, at
// start-up, not at the first panic of a goroutine.
//
// ctx is passed to fn as is: a request's context is canceled when the
// response is done, so work that must outlive the request should get
// context.WithoutCancel(r.Context()), which keeps the request id and the
// values a reporter reads (a Sentry hub). A nil fn does nothing; a nil ctx is
// context.Background(). The returned function is safe for concurrent use.
func NewGo(opts ...Option) (func(ctx context.Context, fn func(ctx context.Context)), error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return c.goSafe, nil
}

// Go runs fn(ctx) in a new goroutine with the defaults of [NewGo]: the panic
// record goes to slog.Default, and no [Reporter] gets it. Use NewGo to
// report to an error tracker.
func Go(ctx context.Context, fn func(ctx context.Context)) {
	defaultConfig.goSafe(ctx, fn)
}

// defaultConfig is NewGo's without options.
var defaultConfig = &config{}

func (c *config) goSafe(ctx context.Context, fn func(ctx context.Context)) {
	if fn == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
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
