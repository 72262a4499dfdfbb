package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// Defaults used when an option is absent.
const (
	// DefaultPrefix starts every key the Store writes.
	DefaultPrefix = "shipshape:rl:"
	// DefaultTimeout bounds each Take against Redis.
	DefaultTimeout = 50 * time.Millisecond
	// DefaultProbeInterval is how often the Store checks, while it answers
	// from the fallback, whether Redis is back.
	DefaultProbeInterval = 500 * time.Millisecond
)

// ErrNilClient is returned by [New] for a nil client (or an interface
// holding a nil pointer), and by Take of a Store not made by New.
var ErrNilClient = errors.New("redisstore: nil redis client")

var errNegativeN = errors.New("redisstore: n must be >= 0")

// Option configures a [Store].
type Option func(*config)

type config struct {
	prefix        string
	timeout       time.Duration
	probeInterval time.Duration
	fallback      ratelimit.Store
	fallbackSet   bool // WithFallback was given, even with nil
	logger        *slog.Logger
	loggerSet     bool // WithLogger was given, even with nil
}

// validate reports the first bad setting; New returns it.
func (c *config) validate() error {
	switch {
	case strings.ContainsAny(c.prefix, "{}"):
		return errors.New("redisstore: WithPrefix: prefix must not contain '{' or '}'")
	case c.timeout <= 0:
		return errors.New("redisstore: WithTimeout: timeout must be > 0")
	case c.probeInterval <= 0:
		return errors.New("redisstore: WithProbeInterval: interval must be > 0")
	case c.fallbackSet && isNil(c.fallback):
		return errors.New("redisstore: WithFallback: nil store")
	case c.loggerSet && c.logger == nil:
		return errors.New("redisstore: WithLogger: nil logger")
	}
	return nil
}

// WithPrefix sets the prefix of every Redis key the Store writes (default
// [DefaultPrefix]; "" is allowed). Give each application its own prefix
// when several share a Redis. A prefix that contains '{' or '}' is an
// error from [New]: Redis Cluster would take the hash tag from the prefix
// and put every key in one slot.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithTimeout bounds each Take against Redis (default [DefaultTimeout]). A
// Take that has no answer by then, while its caller's context is still
// live, is answered by the fallback store, and the Store switches to the
// fallback until a probe finds Redis healthy. It must be > 0.
//
// The timeout holds whatever the client's options. A *redis.Client,
// *redis.ClusterClient or *redis.Ring with ContextTimeoutEnabled stops at
// the context deadline, and the Store calls it directly; any other client
// may block in a socket read until its own ReadTimeout (seconds), so the
// Store runs each call on a goroutine of its own and stops waiting at the
// timeout, which costs a little per Take. Set ContextTimeoutEnabled.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithFallback sets the store that answers while Redis is unavailable
// (default a fresh [ratelimit.NewMemoryStore]). Its counts are its own:
// with an in-memory fallback each process limits on its own during an
// outage. A nil store is an error from [New].
func WithFallback(s ratelimit.Store) Option {
	return func(c *config) { c.fallback, c.fallbackSet = s, true }
}

// WithLogger sets the logger for the two state changes, Redis lost and
// Redis back (default: slog.Default() at the time of the message). Nothing
// is logged per request. A nil logger is an error from [New].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}

// WithProbeInterval sets how often the Store tries Redis while it answers
// from the fallback (default [DefaultProbeInterval]). Each probe is one
// script run on a key of its own, bounded by the timeout. It must be > 0.
func WithProbeInterval(d time.Duration) Option {
	return func(c *config) { c.probeInterval = d }
}

// Store is a [ratelimit.Store] on Redis: one Lua script per Take reads the
// key's two fixed windows, decides and counts atomically on the Redis
// server, with the Redis server's clock, so every process that shares the
// Redis enforces one limit.
//
// When Redis fails or does not answer within the timeout, the Take is
// answered by the fallback store and the Store stays on the fallback,
// without touching Redis per request, until a background probe finds Redis
// answering again; each switch is logged once. [Store.Close] stops the
// probe.
//
// A Store is safe for concurrent use. Make it with [New].
type Store struct {
	client   redis.UniversalClient
	cfg      config
	probeKey string
	// guard: the client ignores context deadlines for socket I/O
	// (ContextTimeoutEnabled is off), so each call runs in its own goroutine
	// and Take stops waiting for it at the timeout.
	guard bool

	degraded atomic.Bool

	// life guards closed and the start of goroutines (probe, guarded
	// calls), so that Close can wait for all of them.
	life    sync.RWMutex
	closed  bool
	stop    chan struct{}
	running sync.WaitGroup
}

// New returns a Store that keeps its counters in Redis through client (a
// *redis.Client, *redis.ClusterClient, a Sentinel failover client, …). The
// Store does not own client: closing it is the caller's job, after
// [Store.Close].
//
// Redis 4.0 or later is required (tested with 7.0). With a Redis Cluster
// each client's counters live in one key, so any client works.
//
// New returns an error, and no Store, for a nil client ([ErrNilClient],
// also for a typed nil such as a nil *redis.Client), a nil option, or an
// option given a value it cannot use (see each option). No goroutine is
// started until Redis first fails.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if isNil(client) {
		return nil, ErrNilClient
	}
	cfg := config{
		prefix:        DefaultPrefix,
		timeout:       DefaultTimeout,
		probeInterval: DefaultProbeInterval,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("redisstore: nil option")
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !cfg.fallbackSet {
		fb, err := ratelimit.NewMemoryStore()
		if err != nil {
			return nil, err
		}
		cfg.fallback = fb
	}
	return &Store{
		client:   client,
		cfg:      cfg,
		probeKey: cfg.prefix + "{" + probeTag + "}",
		guard:    !honoursContext(client),
		stop:     make(chan struct{}),
	}, nil
}

// isNil reports whether v is nil or an interface holding a nil pointer (a
// nil *redis.Client, a nil *ratelimit.MemoryStore), which would be
// dereferenced on the first Take.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// honoursContext reports whether client stops socket reads and writes at
// the context deadline, so that a Take can call it directly.
func honoursContext(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Take implements [ratelimit.Store]. It ignores now: windows are computed
// on the Redis server's clock, and Elapsed is reported on it. While the
// Store is on its fallback (see [Store.Degraded]) or closed, the fallback
// answers with now. Take returns an error only for an invalid policy, a
// negative n, a Store not made by [New], when ctx itself is done (the
// caller left: the take may or may not have been counted, and Redis is not
// considered failed), or when the fallback store fails. A ctx already done
// is not sent to Redis at all.
func (s *Store) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	if err := p.Valid(); err != nil {
		return ratelimit.Window{}, err
	}
	if n < 0 {
		return ratelimit.Window{}, errNegativeN
	}
	if s.client == nil {
		return ratelimit.Window{}, ErrNilClient
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Window{}, fmt.Errorf("redisstore: %w", err)
	}
	if s.degraded.Load() {
		return s.cfg.fallback.Take(ctx, p, key, now, n)
	}
	w, err := s.take(ctx, p, s.redisKey(p.Name, key), n)
	if err == nil {
		return w, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		// The caller gave up or ran out of time: not Redis's fault.
		return ratelimit.Window{}, fmt.Errorf("redisstore: %w", cerr)
	}
	s.trip(err)
	return s.cfg.fallback.Take(ctx, p, key, now, n)
}

// Degraded reports whether Takes are currently answered by the fallback
// store because Redis failed. It suits a health or readiness check.
func (s *Store) Degraded() bool { return s.degraded.Load() }

// Close stops the background probe and waits for calls to Redis still in
// flight (with a client that ignores context deadlines, a call stuck on a
// hung Redis ends at the client's own read timeout); afterwards every Take
// is answered by the fallback store. It does not close the Redis client.
// Close is idempotent and always returns nil.
func (s *Store) Close() error {
	s.life.Lock()
	if !s.closed {
		s.closed = true
		s.degraded.Store(true) // from now on, the fallback answers
		close(s.stop)
	}
	s.life.Unlock()
	s.running.Wait()
	return nil
}

// take runs the script once, bounded by the timeout.
func (s *Store) take(ctx context.Context, p ratelimit.Policy, key string, n int) (ratelimit.Window, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	if !s.guard {
		return s.run(ctx, p, key, n)
	}
	if !s.startGoroutine() {
		return ratelimit.Window{}, errClosed
	}
	type result struct {
		w   ratelimit.Window
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer s.running.Done()
		w, err := s.run(ctx, p, key, n)
		done <- result{w, err}
	}()
	select {
	case r := <-done:
		return r.w, r.err
	case <-ctx.Done():
		return ratelimit.Window{}, ctx.Err()
	}
}

var errClosed = errors.New("redisstore: store closed")

// startGoroutine counts a goroutine Close must wait for, unless the Store
// is closed.
func (s *Store) startGoroutine() bool {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return false
	}
	s.running.Add(1)
	return true
}

// run is the round trip itself.
func (s *Store) run(ctx context.Context, p ratelimit.Policy, key string, n int) (ratelimit.Window, error) {
	wus := (p.Window + time.Microsecond - 1) / time.Microsecond
	r, err := takeScript.Run(ctx, s.client, []string{key}, int64(wus), p.Limit, n).Int64Slice()
	if err != nil {
		return ratelimit.Window{}, err
	}
	if len(r) != 4 {
		return ratelimit.Window{}, fmt.Errorf("redisstore: script replied %d values, want 4", len(r))
	}
	elapsed := time.Duration(r[2]) * time.Microsecond
	if elapsed >= p.Window { // a window that is not a whole number of µs
		elapsed = p.Window - 1
	}
	return ratelimit.Window{Allowed: r[3] == 1, Previous: r[0], Current: r[1], Elapsed: elapsed}, nil
}

// trip switches to the fallback after err and starts the probe, once.
func (s *Store) trip(err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed || !s.degraded.CompareAndSwap(false, true) {
		return
	}
	s.logger().LogAttrs(context.Background(), slog.LevelWarn,
		"redisstore: redis unavailable, rate limits now counted by the fallback store",
		slog.String("error", err.Error()), slog.Duration("timeout", s.cfg.timeout))
	s.running.Add(1)
	go s.probe()
}

// probePolicy is what the probe takes (n = 0) on its own key: the whole
// script runs, so a Redis that answers PING but cannot run the script is
// not taken for healthy.
var probePolicy = ratelimit.Policy{Name: "probe", Limit: 1, Window: time.Second}

// probeTag cannot be a client's tag: plain tags never start with '#' and
// hashed ones are '#' and 43 base64url characters (see tag).
const probeTag = "#probe"

// probe tries Redis every probe interval until it answers or Close.
func (s *Store) probe() {
	defer s.running.Done()
	t := time.NewTicker(s.cfg.probeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		// Same path and timeout as a request: a Redis too slow for requests
		// must not be declared healthy.
		_, err := s.take(context.Background(), probePolicy, s.probeKey, 0)
		if err != nil {
			continue
		}
		s.life.RLock()
		if !s.closed {
			s.degraded.Store(false)
			s.logger().LogAttrs(context.Background(), slog.LevelInfo,
				"redisstore: redis available again, rate limits counted in redis")
		}
		s.life.RUnlock()
		return
	}
}

func (s *Store) logger() *slog.Logger {
	if s.cfg.logger != nil {
		return s.cfg.logger
	}
	return slog.Default()
}
