package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Environment variables the supervisor sets for its workers.
const (
	// EnvWorkerID holds the worker's id (0 to workers-1); [WorkerID] reads
	// it. Set it yourself for processes started by systemd templates or a
	// shell that use [Listen] directly, to get the same log attribute.
	EnvWorkerID = "SHIPSHAPE_WORKER_ID"

	// EnvWorkerIncarnation holds the worker process's incarnation, a
	// number the supervisor gives every worker process it starts (1, 2,
	// 3, … in start order, never reused while the supervisor runs);
	// [WorkerIncarnation] reads it.
	EnvWorkerIncarnation = "SHIPSHAPE_WORKER_INCARNATION"

	// envFDs names the inherited descriptors ("listener=3,ready=4,
	// lifeline=5", and whatever else a part of the supervisor hands its
	// workers; see inheritedFile). Its presence is what makes a process a worker; a
	// worker removes it from its environment at start so that its own
	// child processes do not mistake themselves for workers.
	envFDs = "SHIPSHAPE_CLUSTER_FDS"
	// envAddr is the supervisor's listening address ("tcp 127.0.0.1:8080").
	envAddr = "SHIPSHAPE_CLUSTER_ADDR"
)

// ErrCrashLoop is wrapped by the error [Run] and [Serve] return when a
// worker crashed more often than [WithCrashLoop] allows.
var ErrCrashLoop = errors.New("cluster: crash loop")

// WorkerID returns the id of this worker process (0 to workers-1) and true
// when the process runs as a worker of a [Run] or [Serve] supervisor (or
// when [EnvWorkerID] was set by hand). A replacement worker (crash restart,
// SIGHUP, memory cap) gets the id of the worker it replaces, so for a
// moment two processes may share an id.
//
// Use the id for what must stay put across replacements: sharding work by
// worker (id of N), a per-slot port or metrics label. For what a single
// process owns and a replacement must not share (a file it writes, a lock,
// a consumer name in a queue), use [WorkerIncarnation].
func WorkerID() (int, bool) {
	v, ok := os.LookupEnv(EnvWorkerID)
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(v)
	if err != nil || id < 0 {
		return 0, false
	}
	return id, true
}

// WorkerIncarnation returns this worker process's incarnation and true
// when the process runs as a worker of a supervisor. The supervisor
// numbers every worker process it starts, 1, 2, 3, … (first starts,
// crash restarts, rolling restarts, memory replacements, scaling), so
// that no two processes of one supervisor share a number, even while a
// replacement and the worker it replaces both run. Numbers start again
// at 1 when the supervisor restarts: for a name unique on the host across
// supervisor restarts, combine it with the process id or the
// supervisor's start time.
//
// Use it for per-process resources: a temporary file, a lock or lease
// holder name, a queue consumer id. For sharding by worker, use the
// stable [WorkerID].
func WorkerIncarnation() (uint64, bool) {
	v, ok := os.LookupEnv(EnvWorkerIncarnation)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// serveFunc is what a worker runs: [Run]'s serve argument, or the
// adapter that [Serve] and [ServeFunc] build around the service's
// servers. lns holds the listener on the main address under "" and one
// per [WithNamedAddr] under its name.
type serveFunc func(ctx context.Context, lns map[string]net.Listener) error

// Run runs a supervised cluster of worker processes that share one
// listening socket. Call it from main; the same call behaves differently
// in the two kinds of process:
//
//   - In the process started by you, systemd or a container runtime, Run is
//     the supervisor. It opens the listening socket given by [WithAddr]
//     (required), starts [WithWorkers] copies of the program's executable
//     with the same arguments, and hands each one the socket. It restarts
//     workers that crash, replaces workers over [WithMemoryLimit], drains
//     and stops every worker on SIGTERM or SIGINT (or when ctx is
//     cancelled) and restarts them one at a time on SIGHUP. It returns nil
//     after a requested stop, or an error (wrapping [ErrCrashLoop] when
//     workers kept crashing); main should then exit non-zero. The
//     supervisor never calls serve.
//
//   - In a worker, Run calls serve with a context that is cancelled on
//     SIGTERM or SIGINT (sent by the supervisor to drain it) or when the
//     supervisor is gone, and a listener on the inherited socket, which Run
//     closes when that context is done. The worker counts as ready at the
//     first Accept on ln. serve must return when ctx is done, after
//     finishing the work in progress (the supervisor kills a worker still
//     running one second after [WithShutdownTimeout]); Run returns what
//     serve returned, except that an error wrapping net.ErrClosed after ctx
//     is done (the accept loop ending) is reported as nil. main should then
//     return, or exit non-zero on an error. A worker whose serve returns
//     before being asked to stop is treated as crashed and restarted.
//
// Because the supervisor re-executes the program (same arguments, same
// environment, same stdout and stderr), everything main does before Run
// happens in every process: open what only workers need (database pools,
// for example) inside serve, or only when [WorkerID] reports a worker.
// Options that shape the supervisor (workers, address, backoff, crash
// loop, memory limit, ready timeout) are read from the supervisor's own
// call; a SIGHUP upgrade changes the workers' code but not the
// supervisor's settings.
//
// Run returns an error, before anything starts, for a nil ctx or serve,
// a nil or invalid option, or no [WithAddr]. It needs a Unix system;
// elsewhere it returns an error wrapping [errors.ErrUnsupported]. Workers die with the supervisor: on Linux and
// FreeBSD through the parent-death signal (SIGKILL), and on every Unix
// through a pipe whose end of file makes the worker drain and stop.
func Run(ctx context.Context, serve func(ctx context.Context, ln net.Listener) error, opts ...Option) error {
	if ctx == nil {
		return errors.New("cluster: Run: nil context")
	}
	if serve == nil {
		return errors.New("cluster: Run: nil serve function")
	}
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	if !c.addrSet {
		return errors.New("cluster: Run: no address; use WithAddr")
	}
	if len(c.named) > 0 {
		return fmt.Errorf("cluster: Run: WithNamedAddr %q: Run serves one listener; use ServeFunc", c.named[0].name)
	}
	return run(ctx, c, func(ctx context.Context, lns map[string]net.Listener) error {
		return serve(ctx, lns[""])
	}, true)
}

// Serve runs srv in a supervised cluster: [Run] with a serve function that
// calls srv.Serve on the worker's listener and drains it when the worker
// is asked to stop: it stops accepting (the connections still queued go to
// the other workers), turns keep-alives off (idle connections are closed,
// the others close after their current response), waits until no
// connection is new or active and then calls srv.Shutdown; whatever is
// still open when [WithShutdownTimeout] runs out is closed by srv.Close.
// Serve sets srv.ConnState to a hook of its own that still calls the one
// srv had. A connection on which no request arrives holds the drain until
// srv's ReadHeaderTimeout (or ReadTimeout) closes it, so set one.
//
// When srv.TLSConfig is set, each worker serves TLS on the shared socket,
// with HTTP/2 as net/http offers it (srv.ServeTLS with the certificates of
// TLSConfig; see [ServeFunc]).
//
// The address is [WithAddr], else srv.Addr (":http" when empty). srv must
// not be started by the caller; in the supervisor process it is never
// used. Serve returns an error, before anything starts, for a nil ctx or
// srv, a nil or invalid option, and a [WithNamedAddr] (its server would
// have to be built in the worker: use [ServeFunc]).
//
// srv, and so everything its handler holds, is built before Serve is
// called, in every process, the supervisor included. To open log files,
// database pools or an error reporter in the workers only, use
// [ServeFunc].
func Serve(ctx context.Context, srv *http.Server, opts ...Option) error {
	if ctx == nil {
		return errors.New("cluster: Serve: nil context")
	}
	if srv == nil {
		return errors.New("cluster: Serve: nil *http.Server")
	}
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	if len(c.named) > 0 {
		return fmt.Errorf("cluster: Serve: WithNamedAddr %q needs a server built in the worker; use ServeFunc", c.named[0].name)
	}
	if !c.addrSet {
		c.network, c.addr = "tcp", srv.Addr
		if c.addr == "" {
			c.addr = ":http"
		}
	}
	return run(ctx, c, serveService(func(context.Context) (*Service, error) {
		return &Service{Server: srv}, nil
	}, c), false)
}

func run(ctx context.Context, c *config, serve serveFunc, closeOnDone bool) error {
	inh, err := inherited()
	if err != nil {
		return err
	}
	if inh != nil {
		return runWorker(ctx, inh, c, serve, closeOnDone)
	}
	return supervise(ctx, c)
}

// httpServe adapts srv to a serveFunc with a graceful, bounded drain.
//
// http.Server.Shutdown alone loses requests: a connection accepted just
// before it, whose first request is read after it began, is closed without
// an answer (net/http drops requests read while shutting down), and a
// client cannot retry on a connection it has just opened. So the drain
// first stops accepting (the connections still queued go to the other
// workers), turns keep-alives off (idle connections are closed, busy ones
// close after their response), waits until no connection is new or
// active, and only then calls Shutdown, which by then has nothing left to
// drop.
//
// With srv.TLSConfig set it serves TLS through srv.ServeTLS, which is how
// net/http turns HTTP/2 on: it adds "h2" to the protocols offered by ALPN
// unless srv.Protocols or srv.TLSNextProto say otherwise.
func httpServe(srv *http.Server, c *config) func(ctx context.Context, ln net.Listener) error {
	return func(ctx context.Context, ln net.Listener) error {
		if cfg := srv.TLSConfig; cfg != nil && len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
			return errors.New("cluster: serve: srv.TLSConfig has no certificate (Certificates, GetCertificate or GetConfigForClient)")
		}
		conns := &connTracker{busy: map[net.Conn]struct{}{}, next: srv.ConnState}
		srv.ConnState = conns.hook
		errc := make(chan error, 1)
		go func() {
			if srv.TLSConfig != nil {
				errc <- srv.ServeTLS(ln, "", "")
				return
			}
			errc <- srv.Serve(ln)
		}()
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil // the program shut srv down itself
			}
			return fmt.Errorf("cluster: serve: %w", err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
		defer cancel()
		_ = ln.Close()
		<-errc // Serve has returned: every accepted connection is tracked
		srv.SetKeepAlivesEnabled(false)
		conns.waitQuiet(sctx)
		if err := srv.Shutdown(sctx); err != nil {
			c.log().Warn("cluster: worker shutdown timed out; closing open connections",
				"timeout", c.shutdownTimeout, "error", err)
			_ = srv.Close()
		}
		return nil
	}
}

// connTracker tracks an http.Server's connections that are new (no request
// read yet) or active, through the ConnState hook; next is the hook the
// program had set, still called.
type connTracker struct {
	mu   sync.Mutex
	busy map[net.Conn]struct{}
	next func(net.Conn, http.ConnState)
}

func (t *connTracker) hook(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	if st == http.StateNew || st == http.StateActive {
		t.busy[c] = struct{}{}
	} else {
		delete(t.busy, c)
	}
	t.mu.Unlock()
	if t.next != nil {
		t.next(c, st)
	}
}

// waitQuiet returns when no connection is new or active, or when ctx is
// done.
func (t *connTracker) waitQuiet(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		busy := len(t.busy)
		t.mu.Unlock()
		if busy == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// killGrace is how long past the shutdown timeout the supervisor waits
// before it kills a worker that is still draining.
const killGrace = time.Second
