//go:build unix

package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// controlOp is a request of the control socket for the supervisor's
// operations goroutine, which also runs the SIGHUP rolling restarts, so
// that restarts and scaling never overlap.
type controlOp struct {
	cmd     string // "reload" or "scale"
	workers int
	done    chan error
}

// controlServer is the supervisor's end of the control socket.
type controlServer struct {
	s     *supervisor
	ln    *net.UnixListener
	ops   chan controlOp
	stop  func() // what SIGTERM does
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// listenControl creates the control socket of WithControl (see there for
// the checks).
func listenControl(path string) (*net.UnixListener, error) {
	if !peerCredSupported {
		return nil, fmt.Errorf("cluster: WithControl: peer credentials on this system: %w", errors.ErrUnsupported)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: WithControl: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cluster: WithControl: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if int(st.Uid) != os.Geteuid() && st.Uid != 0 {
			return nil, fmt.Errorf("cluster: WithControl: directory %s belongs to uid %d, not to this user", dir, st.Uid)
		}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("cluster: WithControl: directory %s is writable by others (%v): anyone could replace the socket", dir, fi.Mode().Perm())
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("cluster: WithControl: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("cluster: WithControl: %s: another supervisor is listening on it", path)
		}
		// A socket nobody answers on: left by a supervisor that was killed.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cluster: WithControl: removing the stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("cluster: WithControl: %w", err)
	}
	// The directory keeps others out between bind and chmod; the peer
	// check keeps them out whatever the modes.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cluster: WithControl: %w", err)
	}
	return ln, nil
}

func newControlServer(s *supervisor, ln *net.UnixListener, stop func()) *controlServer {
	cs := &controlServer{s: s, ln: ln, ops: make(chan controlOp), stop: stop, conns: map[net.Conn]struct{}{}}
	cs.wg.Go(cs.serve)
	return cs
}

func (cs *controlServer) serve() {
	for {
		conn, err := cs.ln.AcceptUnix()
		if err != nil {
			return // closed
		}
		cs.mu.Lock()
		if cs.conns == nil { // closing
			cs.mu.Unlock()
			conn.Close()
			return
		}
		cs.conns[conn] = struct{}{}
		cs.mu.Unlock()
		cs.wg.Go(func() {
			defer func() {
				cs.mu.Lock()
				delete(cs.conns, conn)
				cs.mu.Unlock()
				conn.Close()
			}()
			cs.handle(conn)
		})
	}
}

// close removes the socket and ends every connection, which tells a
// client waiting in Stop that the supervisor is exiting.
func (cs *controlServer) close() {
	cs.ln.Close()
	cs.mu.Lock()
	for c := range cs.conns {
		c.Close()
	}
	cs.conns = nil
	cs.mu.Unlock()
	cs.wg.Wait()
}

func (cs *controlServer) handle(conn *net.UnixConn) {
	enc := json.NewEncoder(conn)
	enc.SetEscapeHTML(false)
	uid, pid, err := peerCred(conn)
	if err != nil || (uid != 0 && uid != os.Geteuid()) {
		attrs := []any{"uid", uid, "peer_pid", pid}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		cs.s.log().Warn("cluster: control: connection refused", attrs...)
		_ = enc.Encode(controlResponse{Error: "refused: only the supervisor's user or root may connect"})
		return
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var req controlRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			_ = enc.Encode(controlResponse{Error: "malformed request: " + err.Error()})
			return
		}
		resp := cs.do(req, uid, pid)
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

func (cs *controlServer) do(req controlRequest, uid, pid int) controlResponse {
	s := cs.s
	switch req.Cmd {
	case "status":
		return controlResponse{OK: true, Status: s.status()}
	case "stop":
		s.log().Info("cluster: control: stop requested", "uid", uid, "peer_pid", pid)
		cs.stop()
		return controlResponse{OK: true}
	case "reload", "scale":
		if req.Cmd == "scale" && req.Workers < 1 {
			return controlResponse{Error: fmt.Sprintf("scale: %d workers, want >= 1", req.Workers)}
		}
		s.log().Info("cluster: control: "+req.Cmd+" requested", "uid", uid, "peer_pid", pid, "workers", req.Workers)
		op := controlOp{cmd: req.Cmd, workers: req.Workers, done: make(chan error, 1)}
		select {
		case cs.ops <- op:
		case <-s.ctx.Done():
			return controlResponse{Error: "the supervisor is stopping"}
		}
		select {
		case err := <-op.done:
			if err != nil {
				return controlResponse{Error: err.Error()}
			}
			return controlResponse{OK: true}
		case <-s.ctx.Done():
			return controlResponse{Error: "the supervisor is stopping"}
		}
	}
	return controlResponse{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
}

// status is the supervisor's Status now.
func (s *supervisor) status() *Status {
	now := time.Now()
	st := &Status{PID: os.Getpid(), Executable: s.exe, Addr: s.addrs[""], Started: s.started,
		Uptime: now.Sub(s.started)}
	for name, a := range s.addrs {
		if name != "" {
			if st.NamedAddrs == nil {
				st.NamedAddrs = map[string]string{}
			}
			st.NamedAddrs[name] = a
		}
	}
	s.mu.Lock()
	st.Workers = len(s.slots)
	for p := range s.live {
		ws := WorkerStatus{Worker: p.id, Incarnation: p.inc, PID: p.pid, State: p.state(),
			Started: p.start, Uptime: now.Sub(p.start)}
		if ss := s.stats[p.id]; ss != nil {
			ws.Restarts = ss.restarts
			if ss.lastExit != nil {
				e := *ss.lastExit
				ws.LastExit = &e
			}
		}
		st.Processes = append(st.Processes, ws)
	}
	s.mu.Unlock()
	for i := range st.Processes {
		if rssSupported {
			st.Processes[i].RSS, _ = rss(st.Processes[i].PID)
		}
	}
	slices.SortFunc(st.Processes, func(a, b WorkerStatus) int {
		if a.Worker != b.Worker {
			return a.Worker - b.Worker
		}
		return int(a.Incarnation) - int(b.Incarnation)
	})
	return st
}

// slotStats is what the status reports of a slot beyond its processes.
type slotStats struct {
	restarts int
	lastExit *Exit
}

// recordExit notes how the slot's process p ended (cause as in Exit) and
// whether the slot restarts after it.
func (s *supervisor) recordExit(p *proc, cause string, restart bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.stats[p.id]
	if ss == nil {
		ss = &slotStats{}
		s.stats[p.id] = ss
	}
	if restart {
		ss.restarts++
	}
	ss.lastExit = &Exit{PID: p.pid, Incarnation: p.inc, Cause: cause, Status: exitStatus(p), Time: p.end}
}

// Process states, in proc.st.
const (
	procStarting int32 = iota
	procReady
	procDraining
)

func (p *proc) state() string {
	switch p.st.Load() {
	case procReady:
		return StateReady
	case procDraining:
		return StateDraining
	}
	return StateStarting
}

// scale starts or drains workers, one at a time, until there are n
// (see ControlClient.Scale). It runs on the operations goroutine.
func (s *supervisor) scale(n int, run func(sl *slot, first *proc)) error {
	s.mu.Lock()
	from := len(s.slots)
	s.mu.Unlock()
	start := time.Now()
	s.log().Info("cluster: scaling", "from", from, "to", n)
	for {
		s.mu.Lock()
		cur := len(s.slots)
		s.mu.Unlock()
		switch {
		case cur < n:
			p, err := s.spawn(cur, "scale")
			if err != nil && s.ctx.Err() != nil {
				return errors.New("the supervisor is stopping")
			}
			if err != nil {
				s.crashes.startFailed(cur, p, err, false)
				s.log().Error("cluster: scaling abandoned; a new worker did not start", "worker", cur, "workers", cur, "error", err)
				return fmt.Errorf("worker %d did not start; %d workers: %w", cur, cur, err)
			}
			sl := newSlot(cur)
			s.mu.Lock()
			s.slots = append(s.slots, sl)
			s.mu.Unlock()
			run(sl, p)
		case cur > n:
			s.mu.Lock()
			sl := s.slots[cur-1]
			s.slots = s.slots[:cur-1]
			s.mu.Unlock()
			done := make(chan struct{})
			select {
			case sl.retire <- done:
			case <-s.ctx.Done():
				return errors.New("the supervisor is stopping")
			}
			<-done
		default:
			s.log().Info("cluster: scaled", "workers", n, "duration", time.Since(start).Round(time.Millisecond))
			return nil
		}
	}
}
