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
	"go.opentelemetry.io/otel/metric"

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
	meter         metric.MeterProvider
	meterSet      bool // WithMeterProvider was given, even with nil
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
	metrics  metrics

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
	s := &Store{
		client:   client,
		cfg:      cfg,
		probeKey: cfg.prefix + "{" + probeTag + "}",
		guard:    !honoursContext(client),
		stop:     make(chan struct{}),
	}
	if err := s.newMetrics(); err != nil {
		return nil, err
	}
	return s, nil
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
// on the Redis server's clock, and Elapsed and Index are reported on it.
// While the Store is on its fallback (see [Store.Degraded]) or closed, the
// fallback answers with now. Take returns an error only for invalid
// arguments (see [ratelimit.Store]), a Store not made by [New], when ctx
// itself is done (the caller left: the take may or may not have been
// counted, and Redis is not considered failed), or when the fallback store
// fails. A ctx already done is not sent to Redis at all. Every method
// below follows the same rules.
func (s *Store) Take(ctx context.Context, p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	ps := [1]ratelimit.Policy{p}
	var ws [1]ratelimit.Window
	if err := s.check(ctx, ps[:], 1, n); err != nil {
		return ratelimit.Window{}, err
	}
	if s.degraded.Load() {
		return s.cfg.fallback.Take(ctx, p, key, now, n)
	}
	if _, err := s.takeAll(ctx, ps[:], key, n, ws[:]); err != nil {
		if s.failed(ctx, err) {
			return s.cfg.fallback.Take(ctx, p, key, now, n)
		}
		return ratelimit.Window{}, fmt.Errorf("redisstore: %w", ctx.Err())
	}
	return ws[0], nil
}

// TakeAll implements [ratelimit.Store]: one script run over the keys of
// every policy, which share the client's hash tag and so one Redis
// Cluster slot.
func (s *Store) TakeAll(ctx context.Context, ps []ratelimit.Policy, key string, now time.Time, n int, ws []ratelimit.Window) (bool, error) {
	if err := s.check(ctx, ps, len(ws), n); err != nil {
		return false, err
	}
	if s.degraded.Load() {
		return s.cfg.fallback.TakeAll(ctx, ps, key, now, n, ws)
	}
	allowed, err := s.takeAll(ctx, ps, key, n, ws)
	if err != nil {
		if s.failed(ctx, err) {
			return s.cfg.fallback.TakeAll(ctx, ps, key, now, n, ws)
		}
		return false, fmt.Errorf("redisstore: %w", ctx.Err())
	}
	return allowed, nil
}

// Refund implements [ratelimit.Store] in one script run. A take counted in
// Redis and given back while the Store is on its fallback is given back
// to the fallback, which never counted it: the count in Redis stays (the
// safe direction), and the fallback's counts of that key may lose n.
func (s *Store) Refund(ctx context.Context, ps []ratelimit.Policy, key string, n int, ws []ratelimit.Window) error {
	if err := s.check(ctx, ps, len(ws), n); err != nil {
		return err
	}
	if s.degraded.Load() {
		return s.cfg.fallback.Refund(ctx, ps, key, n, ws)
	}
	keys := make([]string, 0, len(ps))
	args := make([]any, 1, 1+len(ps))
	args[0] = n
	for i, p := range ps {
		if ws[i].Allowed {
			keys = append(keys, s.redisKey(p.Name, key))
			args = append(args, ws[i].Index)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := s.call(ctx, func(ctx context.Context) ([]int64, error) {
		return nil, refundScript.Run(ctx, s.client, keys, args...).Err()
	})
	if err != nil {
		if s.failed(ctx, err) {
			return s.cfg.fallback.Refund(ctx, ps, key, n, ws)
		}
		return fmt.Errorf("redisstore: %w", ctx.Err())
	}
	return nil
}

// Peek implements [ratelimit.Store] in one script run, which writes
// nothing.
func (s *Store) Peek(ctx context.Context, ps []ratelimit.Policy, key string, now time.Time, ws []ratelimit.Window) error {
	if err := s.check(ctx, ps, len(ws), 0); err != nil {
		return err
	}
	if s.degraded.Load() {
		return s.cfg.fallback.Peek(ctx, ps, key, now, ws)
	}
	keys := make([]string, len(ps))
	args := make([]any, len(ps))
	for i, p := range ps {
		keys[i], args[i] = s.redisKey(p.Name, key), windowMicros(p.Window)
	}
	r, err := s.call(ctx, func(ctx context.Context) ([]int64, error) {
		return peekScript.Run(ctx, s.client, keys, args...).Int64Slice()
	})
	if err == nil {
		err = windows(r, 0, ps, ws)
	}
	if err != nil {
		if s.failed(ctx, err) {
			return s.cfg.fallback.Peek(ctx, ps, key, now, ws)
		}
		return fmt.Errorf("redisstore: %w", ctx.Err())
	}
	for i, p := range ps {
		ws[i].Allowed = p.Fits(ws[i].Previous, ws[i].Current, ws[i].Elapsed, 1)
	}
	return nil
}

// Reset implements [ratelimit.Store]: one DEL of the keys of every policy
// (one slot, see TakeAll).
func (s *Store) Reset(ctx context.Context, ps []ratelimit.Policy, key string) error {
	if err := s.check(ctx, ps, -1, 0); err != nil {
		return err
	}
	if s.degraded.Load() {
		return s.cfg.fallback.Reset(ctx, ps, key)
	}
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = s.redisKey(p.Name, key)
	}
	_, err := s.call(ctx, func(ctx context.Context) ([]int64, error) {
		return nil, s.client.Del(ctx, keys...).Err()
	})
	if err != nil {
		if s.failed(ctx, err) {
			return s.cfg.fallback.Reset(ctx, ps, key)
		}
		return fmt.Errorf("redisstore: %w", ctx.Err())
	}
	return nil
}

// check refuses what no method may send to Redis: invalid arguments, a
// Store not made by New, a ctx already done.
func (s *Store) check(ctx context.Context, ps []ratelimit.Policy, nw, n int) error {
	if err := ratelimit.CheckArgs(ps, nw, n, 0); err != nil {
		return err
	}
	if s.client == nil {
		return ErrNilClient
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// failed reports whether err, from a call to Redis, is Redis's failure:
// not when ctx itself is done (the caller gave up or ran out of time).
// It then switches to the fallback, which the caller asks instead.
func (s *Store) failed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	s.trip(err)
	return true
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
	s.metrics.unobserve()
	return nil
}

// call runs fn once, bounded by the timeout; with a client that ignores
// context deadlines, on a goroutine of its own that the call stops waiting
// for at the timeout (fn then writes nothing the caller reads: it returns
// the reply instead).
func (s *Store) call(ctx context.Context, fn func(ctx context.Context) ([]int64, error)) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	if !s.guard {
		return fn(ctx)
	}
	if !s.startGoroutine() {
		return nil, errClosed
	}
	type result struct {
		r   []int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer s.running.Done()
		r, err := fn(ctx)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		return r.r, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
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

// windowMicros is a window in whole microseconds, rounded up: the unit of
// the scripts.
func windowMicros(w time.Duration) int64 {
	return int64((w + time.Microsecond - 1) / time.Microsecond)
}

// takeAll runs the take script once over the keys of ps, with the key
// given as is (the probe passes its own Redis key).
func (s *Store) takeAll(ctx context.Context, ps []ratelimit.Policy, key string, n int, ws []ratelimit.Window) (bool, error) {
	keys := make([]string, len(ps))
	args := make([]any, 1+2*len(ps))
	args[0] = n
	for i, p := range ps {
		keys[i] = s.redisKey(p.Name, key)
		args[1+2*i], args[2+2*i] = windowMicros(p.Window), p.Limit
	}
	return s.runTake(ctx, keys, args, ps, ws)
}

// runTake runs the take script on keys and decodes its reply into ws.
func (s *Store) runTake(ctx context.Context, keys []string, args []any, ps []ratelimit.Policy, ws []ratelimit.Window) (bool, error) {
	r, err := s.call(ctx, func(ctx context.Context) ([]int64, error) {
		return takeScript.Run(ctx, s.client, keys, args...).Int64Slice()
	})
	if err != nil {
		return false, err
	}
	if len(r) < 1 {
		return false, fmt.Errorf("redisstore: script replied %d values, want %d", len(r), 1+4*len(ps))
	}
	if err := windows(r, 1, ps, ws); err != nil {
		return false, err
	}
	allowed := r[0] == 1
	for i := range ws {
		ws[i].Allowed = allowed
	}
	return allowed, nil
}

// windows decodes the four values per policy a script replied from r[at:]
// (previous, current, elapsed µs, window index) into ws.
func windows(r []int64, at int, ps []ratelimit.Policy, ws []ratelimit.Window) error {
	if len(r) != at+4*len(ps) {
		return fmt.Errorf("redisstore: script replied %d values, want %d", len(r), at+4*len(ps))
	}
	for i, p := range ps {
		v := r[at+4*i:]
		elapsed := time.Duration(v[2]) * time.Microsecond
		if elapsed >= p.Window { // a window that is not a whole number of µs
			elapsed = p.Window - 1
		}
		ws[i] = ratelimit.Window{Previous: v[0], Current: v[1], Elapsed: elapsed, Index: v[3]}
	}
	return nil
}

// trip switches to the fallback after err and starts the probe, once.
func (s *Store) trip(err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed || !s.degraded.CompareAndSwap(false, true) {
		return
	}
	s.metrics.switched(true)
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
		var ws [1]ratelimit.Window
		_, err := s.runTake(context.Background(), []string{s.probeKey},
			[]any{0, windowMicros(probePolicy.Window), probePolicy.Limit}, []ratelimit.Policy{probePolicy}, ws[:])
		if err != nil {
			continue
		}
		s.life.RLock()
		if !s.closed {
			s.degraded.Store(false)
			s.metrics.switched(false)
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
