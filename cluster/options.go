package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"
)

// Defaults of the options; each WithX documents its own.
const (
	defaultBackoffMin      = 100 * time.Millisecond
	defaultBackoffMax      = 15 * time.Second
	defaultCrashRestarts   = 10
	defaultCrashWithin     = time.Minute
	defaultShutdownTimeout = 20 * time.Second
	defaultReadyTimeout    = 20 * time.Second
)

// Option configures [Run] and [Serve]. A nil Option is an error.
type Option func(*config)

type config struct {
	workers         int
	network, addr   string
	addrSet         bool
	backoffMin      time.Duration
	backoffMax      time.Duration
	crashRestarts   int
	crashWithin     time.Duration
	shutdownTimeout time.Duration
	memoryLimit     int64
	readyTimeout    time.Duration
	logs            logConfig // WithLog, WithLogBufferSize
	logger          *slog.Logger
	loggerSet       bool
	wrapListener    func(net.Listener) (net.Listener, error)
	wrapSet         bool
	crashHandler    func(Crash)
	crashSet        bool
	named           []namedAddr // WithNamedAddr, in the order given
	control         string      // WithControl: the control socket's path
	controlSet      bool
	metrics         metricsConfig // WithMetrics, WithMeterProvider
	shared          sharedConfig  // WithSharedKeys
	// workerCgroup, set by tests only, is a cgroup directory the
	// supervisor moves every worker into as it starts.
	workerCgroup string
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		workers:         runtime.GOMAXPROCS(0),
		backoffMin:      defaultBackoffMin,
		backoffMax:      defaultBackoffMax,
		crashRestarts:   defaultCrashRestarts,
		crashWithin:     defaultCrashWithin,
		shutdownTimeout: defaultShutdownTimeout,
		readyTimeout:    defaultReadyTimeout,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("cluster: nil Option")
		}
		o(c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// logGroup is the group every attribute the package logs is in, so that
// the attributes of the program's own logger (logger.With("pid", …)) keep
// their names.
const logGroup = "cluster"

// log returns the logger for one record: WithLogger's, or slog.Default()
// as it is now, so that slog.SetDefault reaches the supervisor, with the
// cluster group open.
func (c *config) log() *slog.Logger {
	l := c.logger
	if l == nil {
		l = slog.Default()
	}
	return l.WithGroup(logGroup)
}

// validate reports the first bad setting; Run and Serve return it.
func (c *config) validate() error {
	if err := c.logs.validate(); err != nil {
		return err
	}
	if err := c.metrics.validate(); err != nil {
		return err
	}
	if err := c.shared.validate(); err != nil {
		return err
	}
	switch {
	case c.workers < 1:
		return fmt.Errorf("cluster: WithWorkers: %d workers, want >= 1", c.workers)
	case c.addrSet && !supervisedNetwork(c.network):
		return fmt.Errorf("cluster: WithAddr: network %q, want tcp, tcp4, tcp6 or unix", c.network)
	case c.addrSet && c.addr == "":
		return errors.New("cluster: WithAddr: empty address")
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("cluster: WithRestartBackoff: min %v, max %v, want 0 < min <= max", c.backoffMin, c.backoffMax)
	case c.crashRestarts < 1 || c.crashWithin <= 0:
		return fmt.Errorf("cluster: WithCrashLoop: %d restarts within %v, want restarts >= 1 and within > 0", c.crashRestarts, c.crashWithin)
	case c.shutdownTimeout <= 0:
		return fmt.Errorf("cluster: WithShutdownTimeout: %v, want > 0", c.shutdownTimeout)
	case c.readyTimeout <= 0:
		return fmt.Errorf("cluster: WithReadyTimeout: %v, want > 0", c.readyTimeout)
	case c.memoryLimit < 0:
		return fmt.Errorf("cluster: WithMemoryLimit: %d bytes, want >= 0", c.memoryLimit)
	case c.loggerSet && c.logger == nil:
		return errors.New("cluster: WithLogger: nil logger")
	case c.wrapSet && c.wrapListener == nil:
		return errors.New("cluster: WithListener: nil function")
	case c.crashSet && c.crashHandler == nil:
		return errors.New("cluster: WithCrashHandler: nil function")
	case c.controlSet && c.control == "":
		return errors.New("cluster: WithControl: empty path")
	}
	seen := map[string]bool{}
	for _, a := range c.named {
		switch {
		case !validLogName(a.name):
			return fmt.Errorf("cluster: WithNamedAddr: name %q, want 1-32 of a-z 0-9 _ -", a.name)
		case seen[a.name]:
			return fmt.Errorf("cluster: WithNamedAddr: name %q given twice", a.name)
		case !supervisedNetwork(a.network):
			return fmt.Errorf("cluster: WithNamedAddr %q: network %q, want tcp, tcp4, tcp6 or unix", a.name, a.network)
		case a.addr == "":
			return fmt.Errorf("cluster: WithNamedAddr %q: empty address", a.name)
		}
		seen[a.name] = true
	}
	return nil
}

// namedAddr is one WithNamedAddr.
type namedAddr struct{ name, network, addr string }

func supervisedNetwork(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		return true
	}
	return false
}

// WithWorkers sets the number of worker processes (default
// runtime.GOMAXPROCS(0), which follows the CPU limit of the container's
// cgroup). Fewer than 1 is an error.
func WithWorkers(n int) Option {
	return func(c *config) { c.workers = n }
}

// WithAddr sets the address the supervisor listens on and hands to every
// worker: network is "tcp", "tcp4", "tcp6" or "unix" (any other is an
// error, and so is an empty addr). [Run] requires it; [Serve] defaults to
// the server's Addr (":http" when empty, like net/http). An address that
// cannot be listened on is the error Run or Serve returns.
func WithAddr(network, addr string) Option {
	return func(c *config) { c.network, c.addr, c.addrSet = network, addr, true }
}

// WithNamedAddr adds an address the supervisor listens on besides
// [WithAddr], under a name: an admin or metrics port beside the public
// one, or the same service on a unix socket. Every worker gets a copy of
// each socket, as of the main one, and serves it with the server of that
// name in [Service.Servers] ([ServeFunc]); the workers are ready once
// every server accepts. name is 1 to 32 of a-z, 0-9, _ and - (once
// each); network and addr are as for WithAddr. [Serve] and [Run], which
// have one server or listener, refuse it.
//
// The names are part of what a supervisor hands its workers: a SIGHUP
// upgrade to a binary that adds a WithNamedAddr keeps the supervisor's
// listeners, and the new workers fail to start (the old ones keep
// serving) until the supervisor itself is restarted.
func WithNamedAddr(name, network, addr string) Option {
	return func(c *config) { c.named = append(c.named, namedAddr{name, network, addr}) }
}

// WithRestartBackoff sets the delay before a crashed worker is restarted
// (default 100ms to 15s). The delay doubles with each consecutive crash of
// the same worker, from min up to max, and is jittered down by up to 25% so
// that workers that crashed together do not restart together. A worker
// that stayed up longer than max before it crashed starts again from min.
// min <= 0 or max < min is an error.
func WithRestartBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// WithCrashLoop sets when the supervisor gives up (default 10 restarts
// within 1 minute): when one worker has been restarted more than restarts
// times within the window, the supervisor stops every worker and [Run]
// returns an error wrapping [ErrCrashLoop], so that main exits non-zero and
// systemd, Docker or Kubernetes take over. A worker that fails readiness at
// start counts as a crash. restarts < 1 or within <= 0 is an error.
func WithCrashLoop(restarts int, within time.Duration) Option {
	return func(c *config) { c.crashRestarts, c.crashWithin = restarts, within }
}

// WithShutdownTimeout bounds a worker's graceful drain (default 20s): on
// SIGTERM, SIGINT, a rolling restart or a memory replacement, [Serve] calls
// http.Server.Shutdown with this timeout and then closes the remaining
// connections; the supervisor kills a worker that is still running one
// second after the timeout. d <= 0 is an error.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.shutdownTimeout = d }
}

// WithMemoryLimit caps each worker's memory (default 0, no cap; negative
// is an error). Workers
// get GOMEMLIMIT at 90% of the cap (unless GOMEMLIMIT is already set in the
// environment), so the garbage collector works harder before the cap is
// reached; on Linux the supervisor also samples each worker's resident set
// size every second and gracefully replaces a worker above the cap: the
// replacement is started and ready first, then the old worker drains. On
// other systems only GOMEMLIMIT applies.
func WithMemoryLimit(bytes int64) Option {
	return func(c *config) { c.memoryLimit = bytes }
}

// WithReadyTimeout bounds how long the supervisor waits for a new worker to
// become ready (default 20s). A worker is ready when its serve function
// first calls Accept on the listener it was given, which http.Server.Serve
// does at once. A worker that misses the deadline is killed: at start or
// after a crash it counts as a crash; as a replacement (SIGHUP, memory cap)
// the old worker keeps serving. d <= 0 is an error.
func WithReadyTimeout(d time.Duration) Option {
	return func(c *config) { c.readyTimeout = d }
}

// WithLogger sets the logger of the supervisor's records, and of the one
// a worker makes when its drain times out. Without it they go to
// slog.Default() as it is at the time of each record, so that
// slog.SetDefault reaches them. A nil logger is an error.
//
// Every attribute is in the group "cluster" (cluster.worker, cluster.pid,
// … in a JSON or text handler), so that attributes the logger carries
// already, such as logger.With("pid", …), keep their names and values.
// The messages, and their attributes:
//
//   - info "cluster: supervisor started": pid (the supervisor's), addr,
//     workers, executable, and addr_<name> for each [WithNamedAddr]
//   - info "cluster: worker ready": worker, incarnation, pid, reason
//     ("start", "restart", "rolling restart", "memory limit", "scale"),
//     startup (time to the first Accept)
//   - error "cluster: worker failed to start": worker, error, backoff
//   - error "cluster: worker crashed" (one per [Crash]): worker,
//     incarnation, pid,
//     reason, message, status ("exit status 2", "signal: killed"),
//     uptime; when known goroutine (the crashing one's id), culprit (the
//     innermost in-app frame, "function (file:line)") and stack (the
//     crashing goroutine's frames as the runtime prints them); stderr (the
//     end of the worker's standard error, at most 1 KiB) when there is no
//     stack; rss (bytes) for the memory cap; truncated (bytes of crash
//     output dropped) and crash_loop (true) when they apply
//   - warn "cluster: crash handler is behind; report dropped": worker,
//     pid, dropped (the count so far)
//   - error "cluster: crash handler panicked": worker, pid, panic
//   - warn "cluster: crash handler still busy; not waiting for it":
//     waited
//   - info "cluster: worker restart scheduled": worker, backoff
//   - error "cluster: crash loop; stopping all workers": worker, restarts,
//     within, error
//   - info "cluster: SIGHUP: rolling restart requested"
//   - info "cluster: rolling restart started": workers, executable
//   - info "cluster: rolling restart done": duration
//   - error "cluster: rolling restart abandoned; the remaining workers keep
//     the old version": worker, error
//   - error "cluster: replacement failed; the old worker keeps serving":
//     worker, pid, reason, error
//   - warn "cluster: worker over the memory limit; replacing it": worker,
//     pid, rss, limit (bytes)
//   - info "cluster: stopping; draining workers": signal, timeout
//   - warn "cluster: second stop signal; killing workers": signal
//   - warn "cluster: worker still running after the shutdown timeout;
//     killing it": worker, pid, timeout
//   - info "cluster: worker stopped": worker, incarnation, pid, status,
//     uptime
//   - info "cluster: control: stop requested", "cluster: control: reload
//     requested", "cluster: control: scale requested" ([WithControl]):
//     uid, peer_pid (of the client), workers (scale)
//   - warn "cluster: control: connection refused": uid, peer_pid, and
//     error when the peer could not be identified
//   - info "cluster: scaling": from, to; info "cluster: scaled": workers,
//     duration
//   - error "cluster: scaling abandoned; a new worker did not start":
//     worker, workers (how many there are now), error
//   - info "cluster: serving metrics" ([WithMetrics]): addr
//   - warn "cluster: metrics: worker left out of the scrape": worker,
//     pid, error (the worker did not answer within 5s)
//   - info "cluster: supervisor stopped"
//   - warn "cluster: log records dropped by a worker" ([WithLog]): log
//     (the name), worker, pid, dropped (since the last report, at most
//     one per worker and log every 10s), total
//   - warn "cluster: log record interrupted by the worker's death; left
//     out": log, worker, pid (the record the worker was copying when it
//     died: never written half)
//   - error "cluster: log buffer corrupted; the worker's records are lost
//     from here on": log, worker, pid, error
//   - error "cluster: log write failed" (the file refused a batch; at
//     most one per 10s): log, lines (lost since the last report), error,
//     suppressed (failed writes since the last report)
//   - warn "cluster: worker shutdown timed out; closing open connections"
//     (in the worker, by [Serve]): timeout, error
//
// worker is the worker id ([WorkerID]), incarnation the process's
// ([WorkerIncarnation]), pid the worker's process id;
// backoff, startup, uptime, duration, timeout and within are
// time.Duration values.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}

// WithListener sets a function that wraps the listener each worker
// serves on (default: none), for example to cap connections per client IP
// with connlimit.New, whose signature it shares:
//
//	cluster.WithListener(func(ln net.Listener) (net.Listener, error) {
//		return connlimit.New(ln, connlimit.WithMaxConnsPerIP(32))
//	})
//
// The caps are then per worker: every worker applies them to the
// connections it accepts, on every listener ([WithNamedAddr] too). fn
// runs in every worker, once per listener, before its serve function; the worker counts as ready at its first Accept through the
// wrapper. An error from fn ends the worker with an error wrapping it
// (the supervisor sees a worker that failed to start), and so does a nil
// listener without an error. A nil fn is an error.
func WithListener(fn func(net.Listener) (net.Listener, error)) Option {
	return func(c *config) { c.wrapListener, c.wrapSet = fn, true }
}

// WithCrashHandler sets a function that the supervisor calls with the
// report of every worker that crashed (default: none; the reports are
// logged either way, see [WithLogger]). [Crash] says what is reported for
// which end; a rolling restart, a drain or the supervisor's own stop
// reports nothing. A nil fn is an error.
//
// fn runs in the supervisor process, on a goroutine of its own, one
// report at a time: never on a worker's request path, and never holding
// up a restart. Reports wait for a slow fn in a queue of 64; the ones
// beyond are dropped and counted in a warning. A panic in fn is logged
// and does not stop the supervisor. When the supervisor stops it waits up
// to a second for fn to finish the queued reports, so flush what fn
// queues (sentry.Flush) after [Run] or [Serve] returns.
//
// Identical crashes are counted, not each handed on: the first crash of a
// kind (same [Reason], same message apart from hexadecimal numbers, same
// [Crash.Culprit]) is handed on at once; the identical ones within the
// next minute are counted, and when the minute is over (or the
// supervisor stops) fn gets the last of them with [Crash.Repeats] set to
// the count, which starts the next minute. So a worker that keeps
// crashing the same way costs fn one call a minute, whatever the restart
// rate, and every count arrives; the log still has a record per crash.
// The crash after which the supervisor gives up ([Crash.CrashLoop]) is
// always handed on at once, with the count so far.
func WithCrashHandler(fn func(Crash)) Option {
	return func(c *config) { c.crashHandler, c.crashSet = fn, true }
}
