//go:build unix

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The supervisor owns the one listening socket and hands a copy to every
// worker. Workers then take connections from a single accept queue, so a
// worker that stops (drain, crash, kill -9) leaves the connections still
// queued to the others: nothing is lost when a worker is replaced. With one
// SO_REUSEPORT socket per worker, by contrast, the connections queued on a
// closing socket are reset (unless net.ipv4.tcp_migrate_req is enabled on
// the host).
type supervisor struct {
	c       *config
	exe     string            // the program on disk, re-executed for every worker
	argv    []string          // os.Args, passed on unchanged
	env     []string          // the workers' environment, without the per-worker part
	lnFile  *os.File          // a duplicate of the listening socket, for ExtraFiles
	lnAddr  string            // envAddr value
	named   []inheritedFile   // the WithNamedAddr sockets, as workers inherit them
	addrs   map[string]string // listener name ("" for the main one) → its address
	ctx     context.Context
	cancel  context.CancelCauseFunc
	force   chan struct{} // closed by a second SIGTERM/SIGINT: kill, do not drain
	drains  sync.WaitGroup
	slots   []*slot // guarded by mu (scaling changes it)
	parts   []part  // what every worker gets besides the socket (see part)
	crashes *crashMonitor
	mu      sync.Mutex
	serving map[int]*proc // id → the worker that currently serves it
	// incarnations numbers the worker processes started (see
	// WorkerIncarnation).
	incarnations atomic.Uint64
	live         map[*proc]struct{} // every started worker process not yet reaped; mu
	stats        map[int]*slotStats // id → restarts and last exit, for the status; mu
	started      time.Time
	control      *controlServer // WithControl; nil without
}

// slot is one worker id and the requests to replace its worker.
type slot struct {
	id      int
	replace chan replaceReq
	// retire ends the slot (scale down): its worker is drained, then the
	// channel sent is closed.
	retire chan chan struct{}
}

func newSlot(id int) *slot {
	return &slot{id: id, replace: make(chan replaceReq, 1), retire: make(chan chan struct{})}
}

// replaceReq asks a slot to start a new worker, wait until it is ready and
// then drain the old one.
type replaceReq struct {
	reason string
	pid    int       // replace only this worker (0: whichever serves)
	since  time.Time // a worker started after this already satisfies the request
	done   chan error
}

// proc is one worker process.
type proc struct {
	id    int
	inc   uint64 // incarnation
	pid   int
	cmd   *exec.Cmd
	start time.Time
	life  *os.File // the supervisor's end of the lifeline, closed on exit
	done  chan struct{}
	end   time.Time  // set before done is closed
	hooks []procHook // the parts' state for this process
	// killed is set when the supervisor sends SIGKILL: a SIGKILL it did
	// not send may be the OOM killer's.
	killed atomic.Bool
	st     atomic.Int32 // procStarting, procReady, procDraining
	reaped func()       // set before wait runs; called before done is closed
}

func supervise(ctx context.Context, c *config) error {
	exe, err := executable()
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, c.network, c.addr)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer ln.Close()
	lnFile, err := dupListener(ln)
	if err != nil {
		return err
	}
	defer lnFile.Close()
	addrs := map[string]string{"": ln.Addr().String()}
	var named []inheritedFile
	for _, a := range c.named {
		nln, err := lc.Listen(ctx, a.network, a.addr)
		if err != nil {
			return fmt.Errorf("cluster: WithNamedAddr %q: %w", a.name, err)
		}
		defer nln.Close()
		f, err := dupListener(nln)
		if err != nil {
			return err
		}
		defer f.Close()
		named = append(named, inheritedFile{namedListenerFile(a.name), f})
		addrs[a.name] = nln.Addr().String()
	}

	s := &supervisor{
		named:   named,
		addrs:   addrs,
		c:       c,
		exe:     exe,
		argv:    os.Args,
		env:     workerEnv(c),
		lnFile:  lnFile,
		lnAddr:  c.network + " " + ln.Addr().String(),
		force:   make(chan struct{}),
		serving: make(map[int]*proc),
		live:    make(map[*proc]struct{}),
		stats:   make(map[int]*slotStats),
		started: time.Now(),
	}
	sink, err := newLogSink(c)
	if err != nil {
		return err
	}
	if sink != nil {
		defer sink.close() // after every worker is gone
		s.parts = append(s.parts, sink)
	}
	limits, err := newSharedLimits(c)
	if err != nil {
		return err
	}
	if limits != nil {
		defer limits.close() // after every worker is gone
		s.parts = append(s.parts, limits)
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	defer s.cancel(nil)
	metrics, err := newMetricsPart(s) // before the crash monitor: it counts crashes
	if err != nil {
		return err
	}
	defer metrics.close()
	s.parts = append(s.parts, metrics)
	// The crash monitor comes last, so that its tap of a worker's stderr
	// passes the lines on to whatever another part made of it.
	s.crashes = newCrashMonitor(s.ctx, c)
	s.parts = append(s.parts, s.crashes)
	defer s.crashes.close()

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigc)

	started := []any{"pid", os.Getpid(), "addr", ln.Addr().String(), "workers", c.workers, "executable", exe}
	for _, a := range c.named {
		started = append(started, "addr_"+a.name, addrs[a.name])
	}
	s.log().Info("cluster: supervisor started", started...)

	if c.controlSet {
		cln, err := listenControl(c.control)
		if err != nil {
			return err
		}
		s.control = newControlServer(s, cln, func() {
			select {
			case sigc <- syscall.SIGTERM: // stop as SIGTERM does
			default:
			}
		})
		defer s.control.close() // after every worker is gone: Stop's client waits for it
	}

	var wg sync.WaitGroup
	runSlot := func(sl *slot, first *proc) { wg.Go(func() { s.runSlot(sl, first) }) }
	s.mu.Lock()
	for id := range c.workers {
		s.slots = append(s.slots, newSlot(id))
	}
	slots := s.slots
	s.mu.Unlock()
	for _, sl := range slots {
		runSlot(sl, nil)
	}
	hup := make(chan struct{}, 1)
	wg.Go(func() { s.operations(hup, runSlot) })
	if c.memoryLimit > 0 && rssSupported {
		wg.Go(s.watchMemory)
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		s.drains.Wait()
		close(finished)
	}()

	stopping := false
	for done := false; !done; {
		select {
		case sig := <-sigc:
			switch {
			case sig == syscall.SIGHUP:
				s.log().Info("cluster: SIGHUP: rolling restart requested")
				select {
				case hup <- struct{}{}:
				default: // one is queued already; it will start the binary on disk then
				}
			case !stopping:
				stopping = true
				s.log().Info("cluster: stopping; draining workers", "signal", sig.String(),
					"timeout", c.shutdownTimeout)
				s.cancel(nil)
			default:
				s.log().Warn("cluster: second stop signal; killing workers", "signal", sig.String())
				close(s.force)
				sigc = nil // ignore the rest of a burst; the workers are being killed
			}
		case <-finished:
			done = true
		}
	}
	if err := context.Cause(s.ctx); errors.Is(err, ErrCrashLoop) {
		return err
	}
	s.log().Info("cluster: supervisor stopped")
	return nil
}

// executable is the program to re-execute: os.Args[0] made absolute when it
// names the running executable (so a deploy that switches a symlink such as
// current -> releases/v2 is followed on SIGHUP), else the resolved
// os.Executable. Either path is read again from disk at every start, which
// makes SIGHUP the upgrade path.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cluster: executable: %w", err)
	}
	if a := os.Args[0]; strings.ContainsRune(a, os.PathSeparator) {
		if abs, err := filepath.Abs(a); err == nil {
			st1, err1 := os.Stat(abs)
			st2, err2 := os.Stat(exe)
			if err1 == nil && err2 == nil && os.SameFile(st1, st2) {
				return abs, nil
			}
		}
	}
	return exe, nil
}

// dupListener returns a duplicate of ln's descriptor as an *os.File for
// ExtraFiles. ln.(*net.TCPListener).File would do, except that passing
// such a File to a child process switches the shared socket to blocking
// mode, under the feet of the workers already accepting on it; a
// descriptor wrapped by os.NewFile keeps its non-blocking mode.
func dupListener(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("cluster: listener %T has no descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("cluster: listener descriptor: %w", err)
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		nfd, derr = syscall.Dup(int(fd))
		if derr == nil {
			syscall.CloseOnExec(nfd)
		}
	}); err != nil {
		return nil, fmt.Errorf("cluster: listener descriptor: %w", err)
	}
	if derr != nil {
		return nil, fmt.Errorf("cluster: dup listener: %w", derr)
	}
	return os.NewFile(uintptr(nfd), "cluster-listener"), nil
}

// workerEnv is the environment shared by every worker: the supervisor's,
// without variables of an outer supervisor, plus GOMEMLIMIT for the memory
// cap.
func workerEnv(c *config) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == EnvWorkerID || k == EnvWorkerIncarnation || k == envFDs || k == envAddr {
			continue
		}
		env = append(env, kv)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); c.memoryLimit > 0 && !set {
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(c.memoryLimit/10*9, 10))
	}
	return env
}

// log returns the logger for one record (see config.log).
func (s *supervisor) log() *slog.Logger { return s.c.log() }

// runSlot keeps one worker id served until the supervisor stops or the
// slot is retired; first, when not nil, is its worker already started.
func (s *supervisor) runSlot(sl *slot, first *proc) {
	tracker := newCrashTracker(s.c)
	cur := first
	if cur != nil {
		s.setServing(sl.id, cur)
	}
	var delay time.Duration
	reason := "start"
	for {
		if cur == nil {
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-s.ctx.Done():
					t.Stop()
					return
				case done := <-sl.retire:
					t.Stop()
					close(done)
					return
				case <-t.C:
				}
			}
			p, err := s.spawn(sl.id, reason)
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				var loop bool
				delay, loop = tracker.crash(time.Now(), 0)
				s.crashes.startFailed(sl.id, p, err, loop)
				if p != nil {
					s.recordExit(p, "failed to start", true)
				}
				if loop {
					s.crashLoop(sl.id, err)
					return
				}
				s.log().Error("cluster: worker failed to start", "worker", sl.id, "error", err,
					"backoff", delay)
				reason = "restart"
				continue
			}
			cur = p
			s.setServing(sl.id, cur)
		}

		select {
		case <-s.ctx.Done():
			s.setServing(sl.id, nil)
			s.stop(cur)
			return

		case done := <-sl.retire:
			s.setServing(sl.id, nil)
			s.stop(cur)
			s.recordExit(cur, "scale", false)
			close(done)
			return

		case <-cur.done:
			s.setServing(sl.id, nil)
			if s.ctx.Err() != nil { // it went as the supervisor stops
				s.crashes.reportStopped(cur)
				s.log().Info("cluster: worker stopped", s.exitAttrs(cur)...)
				return
			}
			uptime := cur.end.Sub(cur.start)
			var loop bool
			delay, loop = tracker.crash(time.Now(), uptime)
			s.crashes.reportExit(cur, loop)
			s.recordExit(cur, "crash", !loop)
			if loop {
				s.crashLoop(sl.id, fmt.Errorf("worker %d: %s", sl.id, exitStatus(cur)))
				return
			}
			s.log().Info("cluster: worker restart scheduled", "worker", sl.id, "backoff", delay)
			cur, reason = nil, "restart"

		case req := <-sl.replace:
			if (req.pid != 0 && req.pid != cur.pid) || cur.start.After(req.since) {
				req.done <- nil // already replaced
				continue
			}
			np, err := s.spawn(sl.id, req.reason)
			if err != nil && s.ctx.Err() != nil {
				req.done <- err // stopping: the old worker is drained next
				continue
			}
			if err != nil {
				s.crashes.startFailed(sl.id, np, err, false)
				s.log().Error("cluster: replacement failed; the old worker keeps serving",
					"worker", sl.id, "pid", cur.pid, "reason", req.reason, "error", err)
				req.done <- err
				continue
			}
			old := cur
			cur = np
			s.setServing(sl.id, cur)
			s.drains.Add(1)
			go func() {
				defer s.drains.Done()
				s.stop(old)
				s.recordExit(old, req.reason, false)
				req.done <- nil
			}()
		}
	}
}

func (s *supervisor) setServing(id int, p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == nil {
		delete(s.serving, id)
	} else {
		s.serving[id] = p
	}
}

// crashLoop stops the supervisor with an error wrapping ErrCrashLoop.
func (s *supervisor) crashLoop(id int, last error) {
	err := fmt.Errorf("%w: worker %d restarted more than %d times within %v; last failure: %v",
		ErrCrashLoop, id, s.c.crashRestarts, s.c.crashWithin, last)
	s.log().Error("cluster: crash loop; stopping all workers", "worker", id,
		"restarts", s.c.crashRestarts, "within", s.c.crashWithin, "error", last)
	s.cancel(err)
}

// spawn starts a worker and waits until it is ready; a worker that is not
// ready in time, or exits first, is killed and reported as an error.
func (s *supervisor) spawn(id int, reason string) (*proc, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("ready pipe: %w", err)
	}
	defer readyR.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, fmt.Errorf("lifeline pipe: %w", err)
	}

	cmd := &exec.Cmd{
		Path:        s.exe,
		Args:        s.argv,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: sysProcAttr(),
	}
	// What the worker inherits, by name; the worker finds each with
	// inheritance.file(name). Every part of the supervisor adds its own
	// (and may change cmd, its Stderr say) in prepare.
	files := []inheritedFile{
		{"listener", s.lnFile},
		{"ready", readyW},
		{"lifeline", lifeR},
	}
	files = append(files, s.named...)
	p := &proc{id: id, inc: s.incarnations.Add(1), cmd: cmd, life: lifeW, done: make(chan struct{})}
	s.countStart(reason)
	for _, part := range s.parts {
		f, err := part.prepare(p)
		if err != nil {
			readyW.Close()
			lifeR.Close()
			lifeW.Close()
			p.abandon()
			return nil, err
		}
		files = append(files, f...)
	}
	extra, names := inheritedFiles(files)
	cmd.ExtraFiles = extra
	cmd.Env = append(s.env[:len(s.env):len(s.env)], EnvWorkerID+"="+strconv.Itoa(id),
		EnvWorkerIncarnation+"="+strconv.FormatUint(p.inc, 10), envFDs+"="+names, envAddr+"="+s.lnAddr)
	err = cmd.Start()
	readyW.Close()
	lifeR.Close()
	p.started()
	if err != nil {
		lifeW.Close()
		p.abandon()
		return nil, fmt.Errorf("start %s: %w", s.exe, err)
	}
	p.pid, p.start = cmd.Process.Pid, time.Now()
	s.mu.Lock()
	s.live[p] = struct{}{}
	s.mu.Unlock()
	p.reaped = func() {
		s.mu.Lock()
		delete(s.live, p)
		s.mu.Unlock()
	}
	go p.wait()

	readyc := make(chan bool, 1)
	go func() {
		var b [1]byte
		n, _ := readyR.Read(b[:])
		readyc <- n == 1
	}()
	t := time.NewTimer(s.c.readyTimeout)
	defer t.Stop()
	var fail error
	notReady := false
	select {
	case ok := <-readyc:
		if ok {
			p.st.Store(procReady)
			s.log().Info("cluster: worker ready", "worker", id, "incarnation", p.inc, "pid", p.pid,
				"reason", reason, "startup", time.Since(p.start))
			return p, nil
		}
		// End of file without the byte: the worker exited (or closed the
		// pipe, which only a foreign program would do).
		select {
		case <-p.done:
		case <-t.C:
		}
		fail = errors.New("exited before it was ready")
	case <-t.C:
		fail = fmt.Errorf("not ready within %v", s.c.readyTimeout)
		notReady = true
	case <-s.ctx.Done():
		fail = errors.New("supervisor stopping")
	}
	if notReady {
		s.crashes.quit(p) // SIGQUIT first: where is it stuck?
	} else {
		p.kill()
	}
	<-p.done
	readyR.Close() // ends the reading goroutine if the worker never wrote
	// p goes back with the error, for its crash report.
	return p, fmt.Errorf("worker %d (pid %d): %w (%s)", id, p.pid, fail, exitStatus(p))
}

// inheritedFile is a descriptor the supervisor hands a worker, under a
// name the worker looks it up by.
type inheritedFile struct {
	name string
	f    *os.File
}

// inheritedFiles returns the files for exec.Cmd.ExtraFiles and the value
// of envFDs that names them: the first is descriptor 3 in the worker.
func inheritedFiles(files []inheritedFile) ([]*os.File, string) {
	extra := make([]*os.File, len(files))
	names := make([]string, len(files))
	for i, f := range files {
		extra[i] = f.f
		names[i] = f.name + "=" + strconv.Itoa(3+i)
	}
	return extra, strings.Join(names, ",")
}

// wait reaps the process; done is closed afterwards, once every part has
// seen the exit.
func (p *proc) wait() {
	_ = p.cmd.Wait()
	p.end = time.Now()
	p.reaped()
	p.life.Close()
	for _, h := range p.hooks {
		h.exited(p)
	}
	close(p.done)
}

// started tells the parts that the process was started (or failed to
// start): they close the descriptors only the worker needed.
func (p *proc) started() {
	for _, h := range p.hooks {
		h.started(p)
	}
}

// abandon releases what the parts prepared for a process that never ran.
func (p *proc) abandon() {
	for _, h := range p.hooks {
		h.exited(p)
	}
}

// A part is a piece of the supervisor that hands every worker something
// and looks after it for the worker's life: the crash monitor, the log
// sink. prepare runs before each worker starts; it returns the descriptors
// the worker inherits and registers the part's state for that process with
// p.attach. It may change p.cmd (its Stderr, say).
type part interface {
	prepare(p *proc) ([]inheritedFile, error)
}

// procHook is a part's state for one worker process.
type procHook interface {
	// started runs once cmd.Start returned (with an error or not): close
	// the worker's ends of pipes here.
	started(p *proc)
	// exited runs once the process was reaped (or never started), before
	// the supervisor decides what to do about it: drain what it left,
	// read how it ended.
	exited(p *proc)
}

// attach registers a part's state for p.
func (p *proc) attach(h procHook) { p.hooks = append(p.hooks, h) }

func (p *proc) kill() {
	p.killed.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
}

// stop drains p: SIGTERM, then SIGKILL once the shutdown timeout (plus a
// grace period for the worker's own hard close) has passed.
func (s *supervisor) stop(p *proc) {
	p.st.Store(procDraining)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.c.shutdownTimeout + killGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		s.log().Warn("cluster: worker still running after the shutdown timeout; killing it",
			"worker", p.id, "pid", p.pid, "timeout", s.c.shutdownTimeout)
		p.kill()
		<-p.done
	case <-s.force:
		p.kill()
		<-p.done
	}
	s.log().Info("cluster: worker stopped", s.exitAttrs(p)...)
	s.crashes.reportStopped(p)
}

func (s *supervisor) exitAttrs(p *proc) []any {
	return []any{"worker", p.id, "incarnation", p.inc, "pid", p.pid, "status", exitStatus(p),
		"uptime", p.end.Sub(p.start).Round(time.Millisecond)}
}

// exitStatus describes how p ended ("exit status 1", "signal: killed").
func exitStatus(p *proc) string {
	select {
	case <-p.done:
	default:
		return "running"
	}
	if st := p.cmd.ProcessState; st != nil {
		return st.String()
	}
	return "unknown"
}

// operations runs the rolling restarts, for every SIGHUP and control
// reload, and the control socket's scaling, one at a time.
func (s *supervisor) operations(hup <-chan struct{}, runSlot func(*slot, *proc)) {
	var ctl chan controlOp
	if s.control != nil {
		ctl = s.control.ops
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-hup:
			_ = s.rollingRestart()
		case op := <-ctl:
			var err error
			if op.cmd == "scale" {
				err = s.scale(op.workers, runSlot)
			} else {
				err = s.rollingRestart()
			}
			op.done <- err
		}
	}
}

// rollingRestart replaces the workers one at a time.
func (s *supervisor) rollingRestart() error {
	start := time.Now()
	s.mu.Lock()
	slots := slices.Clone(s.slots)
	s.mu.Unlock()
	s.log().Info("cluster: rolling restart started", "workers", len(slots), "executable", s.exe)
	for _, sl := range slots {
		req := replaceReq{reason: "rolling restart", since: start, done: make(chan error, 1)}
		select {
		case sl.replace <- req:
		case <-s.ctx.Done():
			return errors.New("the supervisor is stopping")
		}
		var err error
		select {
		case err = <-req.done:
		case <-s.ctx.Done():
			return errors.New("the supervisor is stopping")
		}
		if err != nil {
			s.log().Error("cluster: rolling restart abandoned; the remaining workers keep the old version",
				"worker", sl.id, "error", err)
			return fmt.Errorf("rolling restart abandoned at worker %d: %w", sl.id, err)
		}
	}
	s.log().Info("cluster: rolling restart done", "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// memorySampleEvery is how often watchMemory samples the workers' RSS.
const memorySampleEvery = time.Second

// watchMemory samples each serving worker's resident set size and asks
// for the replacement of those over the limit.
func (s *supervisor) watchMemory() {
	tick := time.NewTicker(memorySampleEvery)
	defer tick.Stop()
	asked := map[int]time.Time{} // pid → when its replacement was requested
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		procs := make([]*proc, 0, len(s.serving))
		for _, p := range s.serving {
			procs = append(procs, p)
		}
		s.mu.Unlock()
		now := time.Now()
		for pid, at := range asked {
			if now.Sub(at) > s.c.readyTimeout+s.c.shutdownTimeout+killGrace {
				delete(asked, pid) // retry a replacement that did not happen
			}
		}
		for _, p := range procs {
			if _, ok := asked[p.pid]; ok {
				continue
			}
			rss, err := rss(p.pid)
			if err != nil || rss <= s.c.memoryLimit {
				continue
			}
			req := replaceReq{reason: "memory limit", pid: p.pid, since: now, done: make(chan error, 1)}
			s.mu.Lock()
			var replace chan replaceReq
			if p.id < len(s.slots) {
				replace = s.slots[p.id].replace
			}
			s.mu.Unlock()
			select {
			case replace <- req: // nil (the slot was scaled away): never
				asked[p.pid] = now
				s.log().Warn("cluster: worker over the memory limit; replacing it", "worker", p.id,
					"pid", p.pid, "rss", rss, "limit", s.c.memoryLimit)
				s.crashes.overCap(p, rss)
			default: // a replacement is queued for this slot already
			}
		}
	}
}
