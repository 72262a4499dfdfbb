package ratelimit

import (
	"errors"
	"log/slog"
	"net/http"
)

// Option configures a [Limiter].
type Option func(*config)

type config struct {
	key      KeyFunc
	store    Store
	storeSet bool // WithStore was given, even with nil
	name     string
	headers  HeaderStyle
	denied   http.Handler
	onError  func(http.ResponseWriter, *http.Request, error)
	failOpen bool
	skip     func(*http.Request) bool
	logger   *slog.Logger
}

// validate reports the first bad setting; New returns it.
func (c *config) validate() error {
	switch {
	case c.key == nil:
		return errors.New("ratelimit: WithKey: nil KeyFunc")
	case c.storeSet && c.store == nil:
		return errors.New("ratelimit: WithStore: nil store")
	case c.headers < HeadersIETF || c.headers > HeadersNone:
		return errors.New("ratelimit: WithHeaders: unknown header style")
	case c.denied == nil:
		return errors.New("ratelimit: WithDeniedHandler: nil handler")
	case c.onError == nil:
		return errors.New("ratelimit: WithErrorHandler: nil function")
	}
	return ValidName(c.name)
}

// WithKey sets how requests are grouped (default [KeyByIP]).
func WithKey(fn KeyFunc) Option {
	return func(c *config) { c.key = fn }
}

// WithStore sets where counts are kept (default a new [MemoryStore] per
// Limiter). Share one store between limiters, or use redisstore to share
// counts between processes. Limiters that share a store must have distinct
// names (see [WithName]) unless they are meant to share counts.
func WithStore(s Store) Option {
	return func(c *config) { c.store, c.storeSet = s, true }
}

// WithName names the policy (default "default"): the name in the
// RateLimit-Policy and RateLimit headers and the namespace of the counts in
// the store. It must be 1–64 printable ASCII characters without '"' or '\'.
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// ValidName reports an error when name cannot be a policy name: it goes
// verbatim into a structured-field string of the RateLimit headers, so it
// must be 1–64 printable ASCII characters without '"' or '\'. slowdown
// applies the same rule.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("ratelimit: name must be 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return errors.New(`ratelimit: name must be printable ASCII without '"' or '\'`)
		}
	}
	return nil
}

// WithHeaders chooses the rate-limit headers sent on every response
// (default [HeadersIETF]). Retry-After is sent on 429 in every style.
func WithHeaders(style HeaderStyle) Option {
	return func(c *config) { c.headers = style }
}

// WithDeniedHandler replaces the response to a refused request (default:
// 429 with an RFC 9457 application/problem+json body). Headers and
// Retry-After are already set when it runs, and [FromContext] returns the
// decision.
func WithDeniedHandler(h http.Handler) Option {
	return func(c *config) { c.denied = h }
}

// WithErrorHandler replaces the response to a request that could not be
// decided: the key function failed (the error wraps the KeyFunc's error;
// errors.Is(err, ErrNoKey) when the request lacked what the key needs), or
// the store failed and the limiter fails closed. The default answers 400
// for ErrNoKey, 503 with Retry-After for store errors and 500 otherwise,
// with a problem+json body that never contains the error text.
func WithErrorHandler(fn func(http.ResponseWriter, *http.Request, error)) Option {
	return func(c *config) { c.onError = fn }
}

// WithFailOpen chooses what happens when the store fails (default true):
// serve the request uncounted and log the error (at most once per 10s), or,
// with false, refuse it through the error handler (503 by default). Key
// errors never fail open, and neither does a request whose context is done
// by the time the store answers (the client left): that is not a store
// failure, and the request is not served at all (see [Limiter.Handler]).
func WithFailOpen(open bool) Option {
	return func(c *config) { c.failOpen = open }
}

// WithSkip exempts requests for which fn returns true (health checks,
// trusted networks): they are neither counted nor limited.
func WithSkip(fn func(*http.Request) bool) Option {
	return func(c *config) { c.skip = fn }
}

// WithLogger sets the logger for store and key errors (default, and with
// nil: slog.Default() at the time of each report).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}
