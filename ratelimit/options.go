package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/shipshape-go/shipshape/internal/nilcheck"
	"github.com/shipshape-go/shipshape/internal/ratelimitheader"
	"github.com/shipshape-go/shipshape/problem"
)

// Option configures a [Limiter].
type Option func(*config)

type config struct {
	key       KeyFunc
	store     Store
	storeSet  bool // WithStore was given, even with nil
	name      string
	headers   HeaderStyle
	problem   problem.Writer
	failOpen  bool
	skip      func(*http.Request) bool
	skipSet   bool // WithSkip was given, even with nil
	logger    *slog.Logger
	loggerSet bool // WithLogger was given, even with nil
}

// validate reports the first bad setting; New returns it.
func (c *config) validate() error {
	switch {
	case c.key == nil:
		return errors.New("ratelimit: WithKey: nil KeyFunc")
	case c.storeSet && nilcheck.Is(c.store):
		return errors.New("ratelimit: WithStore: nil store")
	case !ratelimitheader.Style(c.headers).Valid():
		return fmt.Errorf("ratelimit: WithHeaders: unknown header style %v", c.headers)
	case c.problem == nil:
		return errors.New("ratelimit: WithProblemWriter: nil Writer")
	case c.skipSet && c.skip == nil:
		return errors.New("ratelimit: WithSkip: nil function")
	case c.loggerSet && c.logger == nil:
		return errors.New("ratelimit: WithLogger: nil logger")
	}
	if err := ratelimitheader.ValidName(c.name); err != nil {
		return fmt.Errorf("ratelimit: WithName: %w", err)
	}
	return nil
}

// WithKey sets how requests are grouped (default [KeyByIP]). A nil
// KeyFunc is an error from [New].
func WithKey(fn KeyFunc) Option {
	return func(c *config) { c.key = fn }
}

// WithStore sets where counts are kept (default a new [MemoryStore] per
// Limiter). Share one store between limiters, or use redisstore to share
// counts between processes. Limiters that share a store must have distinct
// names (see [WithName]) unless they are meant to share counts. A nil
// store, or an interface holding a nil pointer, is an error from [New].
func WithStore(s Store) Option {
	return func(c *config) { c.store, c.storeSet = s, true }
}

// WithName names the policy (default "default"): the name in the
// RateLimit-Policy and RateLimit headers and the namespace of the counts in
// the store. It goes verbatim into a structured-field string, so it must
// be 1–64 printable ASCII characters without '"' or '\' (slowdown.WithName
// has the same rule); anything else is an error from [New].
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithHeaders chooses the rate-limit headers sent on every response
// (default [HeadersIETF]). Retry-After is sent on 429 in every style. A
// value other than the four HeaderStyle constants is an error from [New].
func WithHeaders(style HeaderStyle) Option {
	return func(c *config) { c.headers = style }
}

// WithProblemWriter sets how the Limiter writes the responses it
// generates itself (default [problem.Write], RFC 9457 problem details),
// so that a service keeps its own error format for them:
//
//   - 429 Too Many Requests for a refused request; [FromContext] on the
//     request's context returns the [Decision];
//   - 400 Bad Request when the request lacks what the KeyFunc needs (its
//     error wraps [ErrNoKey]);
//   - 500 Internal Server Error when the KeyFunc fails otherwise (a
//     misconfiguration, logged: see [WithLogger]);
//   - 503 Service Unavailable when the store fails and the Limiter fails
//     closed ([WithFailOpen](false)).
//
// The headers the Limiter sets are already on w when w runs: the
// rate-limit headers of the chosen style and Retry-After on 429 (the time
// until one request fits) and 503 (1 second). Details.Detail is text for
// the client; it never holds an error's text. A nil Writer is an error
// from [New].
func WithProblemWriter(pw problem.Writer) Option {
	return func(c *config) { c.problem = pw }
}

// WithFailOpen chooses what happens when the store fails (default true):
// serve the request uncounted, or, with false, refuse it with 503 (see
// [WithProblemWriter]). Either way the error is logged at most once per
// 10s. Key errors never fail open, and neither does a request whose
// context is done by the time the store answers (the client left): that
// is not a store failure, and the request is not served at all (see
// [Limiter.Handler]).
func WithFailOpen(open bool) Option {
	return func(c *config) { c.failOpen = open }
}

// WithSkip exempts requests for which fn returns true (health checks,
// trusted networks): they are neither counted nor limited. A nil fn is an
// error from [New].
func WithSkip(fn func(*http.Request) bool) Option {
	return func(c *config) { c.skip, c.skipSet = fn, true }
}

// WithLogger sets the logger for store errors and for KeyFunc errors that
// do not wrap [ErrNoKey] (a misconfigured KeyFunc), each kind at most once
// per 10s (default: slog.Default() at the time of each record, so that
// slog.SetDefault after New still applies). A nil logger is an error from
// [New].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}
