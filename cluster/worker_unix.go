//go:build unix

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// inheritance is what a worker received from its supervisor.
type inheritance struct {
	ln       *os.File            // the shared listening socket
	network  string              // the supervisor's network…
	addr     string              // …and the socket's address (host:port or path)
	ready    *os.File            // write one byte when ready, then close
	lifeline *os.File            // end of file: the supervisor is gone
	files    map[string]*os.File // every inherited descriptor, by name
	started  atomic.Bool
}

// file returns the inherited descriptor called name, or nil.
func (inh *inheritance) file(name string) *os.File { return inh.files[name] }

// inherited returns the worker's inheritance, nil in a process that was not
// started by a supervisor. The descriptors are taken over once, at package
// initialisation: marked close-on-exec (so the worker's own child processes
// do not inherit the listening socket) and the variables that name them
// removed from the environment.
var inherited = sync.OnceValues(func() (*inheritance, error) {
	v, ok := os.LookupEnv(envFDs)
	if !ok {
		return nil, nil
	}
	addr := os.Getenv(envAddr)
	os.Unsetenv(envFDs)
	os.Unsetenv(envAddr)
	network, addr, _ := strings.Cut(addr, " ")
	if network == "" || addr == "" {
		return nil, fmt.Errorf("cluster: worker: malformed %s=%q", envAddr, os.Getenv(envAddr))
	}
	files := map[string]*os.File{}
	for _, part := range strings.Split(v, ",") {
		name, n, ok := strings.Cut(part, "=")
		fd, err := strconv.Atoi(n)
		if !ok || name == "" || err != nil || fd < 3 || files[name] != nil {
			return nil, fmt.Errorf("cluster: worker: malformed %s=%q", envFDs, v)
		}
		syscall.CloseOnExec(fd)
		if name == "lifeline" {
			// The lifeline pipe is this worker's alone: make it pollable
			// (before os.NewFile looks at it) so that Close interrupts the
			// goroutine reading it.
			_ = syscall.SetNonblock(fd, true)
		}
		files[name] = os.NewFile(uintptr(fd), "cluster-"+name)
	}
	inh := &inheritance{network: network, addr: addr, files: files,
		ln: files["listener"], ready: files["ready"], lifeline: files["lifeline"]}
	if inh.ln == nil || inh.ready == nil || inh.lifeline == nil {
		return nil, fmt.Errorf("cluster: worker: %s=%q lacks the listener, ready or lifeline descriptor", envFDs, v)
	}
	takeCrashOutput(files["crash"])
	return inh, nil
})

// A worker takes its descriptors over as the program starts, not when it
// calls Run or Serve: main may start child processes before, and those
// would otherwise inherit the listening socket (holding the port after the
// worker is gone) and the variables that make a process a worker.
func init() { _, _ = inherited() }

// inheritedListener returns a listener on the inherited socket when this
// process is a worker and network/addr name the supervisor's port.
func inheritedListener(network, addr string) (net.Listener, bool, error) {
	inh, err := inherited()
	if err != nil || inh == nil {
		return nil, false, err
	}
	if !inh.matches(network, addr) {
		return nil, false, nil
	}
	ln, err := net.FileListener(inh.ln)
	if err != nil {
		return nil, true, fmt.Errorf("cluster: inherited listener: %w", err)
	}
	return ln, true, nil
}

// matches reports whether Listen's TCP network/addr asks for the inherited
// socket: the same port, whatever the host part. A unix socket never
// matches (Listen is TCP only).
func (inh *inheritance) matches(network, addr string) bool {
	if inh.network == "unix" {
		return false
	}
	_, want, err1 := net.SplitHostPort(addr)
	_, have, err2 := net.SplitHostPort(inh.addr)
	if err1 != nil || err2 != nil {
		return false
	}
	wp, err1 := net.LookupPort(network, want)
	hp, err2 := net.LookupPort(network, have)
	return err1 == nil && err2 == nil && wp == hp && wp != 0
}

// runWorker is Run in a worker process.
func runWorker(ctx context.Context, inh *inheritance, c *config, serve serveFunc, closeOnDone bool) error {
	if !inh.started.CompareAndSwap(false, true) {
		return errors.New("cluster: Run or Serve called twice in a worker")
	}
	if err := checkWorkerLogs(); err != nil {
		return err
	}
	defer inh.lifeline.Close()
	defer inh.ready.Close()
	serveWorkerMetrics(inh, c)

	// A SIGHUP sent to every process of the program (pkill -HUP name) is
	// meant for the supervisor; by default it would kill a worker. Catch
	// and drop it rather than ignore it: an ignored signal stays ignored
	// in the worker's own child processes, a caught one does not. The
	// program may still watch SIGHUP with signal.Notify.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The lifeline reaches end of file when the supervisor exits, even when
	// it was killed (and on systems without a parent-death signal). Before
	// that, the supervisor may ask for a memory dump on it.
	// The supervisor asks for the dump as it starts the replacement, and
	// drains this worker once the replacement is ready, which can be
	// sooner than the dump's collections take: the worker does not return
	// (and its process does not exit) while a dump is being written.
	var dumping sync.Mutex
	defer func() {
		dumping.Lock()
		//lint:ignore SA2001 the lock is the wait for a dump in progress
		dumping.Unlock()
	}()
	go func() {
		var b [1]byte
		for {
			n, err := inh.lifeline.Read(b[:])
			if err != nil || n != 1 || b[0] != lifelineMemoryDump {
				break
			}
			dumping.Lock()
			writeMemoryDump(inh.file("crash"))
			dumping.Unlock()
		}
		cancel()
	}()

	// The main listener is "", each WithNamedAddr one under its name.
	files := map[string]*os.File{"": inh.ln}
	for _, a := range c.named {
		f := inh.file(namedListenerFile(a.name))
		if f == nil {
			return fmt.Errorf("cluster: worker: the supervisor has no WithNamedAddr %q (it was started without it: restart it, a SIGHUP keeps its listeners)", a.name)
		}
		files[a.name] = f
	}
	ready := &readiness{left: len(files), f: inh.ready}
	lns := make(map[string]net.Listener, len(files))
	for name, f := range files {
		ln, err := net.FileListener(f)
		if err != nil {
			return fmt.Errorf("cluster: inherited listener %q: %w", name, err)
		}
		defer ln.Close()
		if closeOnDone {
			go func() {
				<-ctx.Done()
				ln.Close()
			}()
		}
		var l net.Listener = &readyListener{Listener: ln, ready: ready}
		if c.wrapListener != nil {
			if l, err = c.wrapListener(l); err != nil {
				return fmt.Errorf("cluster: WithListener: %w", err)
			}
			if l == nil {
				return errors.New("cluster: WithListener: nil listener without an error")
			}
		}
		lns[name] = l
	}
	err := serve(ctx, lns)
	if closeOnDone && ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		return nil // the accept loop ended because Run closed ln: a clean drain
	}
	return err
}

// namedListenerFile is the inherited descriptor's name of the
// WithNamedAddr socket called name.
func namedListenerFile(name string) string { return "listener-" + name }

// readiness tells the supervisor that the worker is ready once every
// listener had its first Accept: the program has done its set-up and is
// about to take connections on each.
type readiness struct {
	mu   sync.Mutex
	left int
	f    *os.File
}

func (r *readiness) accepting() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left--; r.left == 0 {
		_, _ = r.f.Write([]byte{1})
		_ = r.f.Close()
	}
}

// readyListener reports its first Accept to the worker's readiness.
type readyListener struct {
	net.Listener
	once  sync.Once
	ready *readiness
}

// Accept signals readiness once, then accepts from the shared socket.
func (l *readyListener) Accept() (net.Conn, error) {
	l.once.Do(l.ready.accepting)
	return l.Listener.Accept()
}
