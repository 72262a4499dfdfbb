// Package testenv starts the real servers that shipshape's tests run
// against (redis-server, nginx, haproxy) on loopback ports chosen at run
// time, and stops them when the test ends.
//
// A missing binary skips the test with a message that says how to install
// it, except when the environment variable CI is "true": there a missing
// binary fails the test, so that CI never passes by skipping. The README's
// test command (make test) installs every binary the tests need.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true), where missing
// binaries are failures instead of skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// LookPath returns the path of the named binary. When it is missing the test
// is skipped, or failed under CI; pkg names the Debian package to install.
func LookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := dir + "/" + name; isExecutable(p) {
			return p
		}
	}
	msg := fmt.Sprintf("testenv: %s not found (install it with `apt-get install %s`, or run `make test`)", name, pkg)
	if InCI() {
		t.Fatal(msg + "; CI=true, so a missing binary is a failure")
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Servers started on it may still lose a race with another process; the
// Start helpers detect that (the server exits) and report it clearly.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts a TCP connection or the timeout passes.
func WaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not accepting after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Process is a server process started by [Start].
type Process struct {
	Name string // for messages

	cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
	err  error // set before done is closed
	once sync.Once
}

// Start runs cmd (its own process group, killed when the test ends), then
// waits until every address in waitAddrs accepts TCP connections. The
// process output is kept and printed if the test fails.
func Start(t testing.TB, name string, cmd *exec.Cmd, waitAddrs ...string) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: cmd, out: &Buffer{max: processOutputMax}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.out
	}
	if err := startProcess(t, p); err != nil {
		t.Fatal(err)
	}
	for _, addr := range waitAddrs {
		if err := p.waitAddr(addr, 10*time.Second); err != nil {
			t.Fatalf("%v\n%s output:\n%s", err, name, p.Output())
		}
	}
	return p
}

// startProcess starts p.cmd in its own process group (killed with the test
// binary, and at the end of the test) and reaps it in the background.
func startProcess(t testing.TB, p *Process) error {
	if p.cmd.SysProcAttr == nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p.cmd.SysProcAttr.Setpgid = true
	p.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("testenv: %s output:\n%s", p.Name, p.Output())
		}
	})
	return nil
}

func (p *Process) waitAddr(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("testenv: %s exited before %s accepted connections: %v", p.Name, addr, p.err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s: %s not accepting after %v: %w", p.Name, addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill kills the process group with SIGKILL and waits for the process to
// exit. It is safe to call more than once.
func (p *Process) Kill() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	})
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills it.
func (p *Process) Stop(timeout time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
	}
}

// Buffer is a bytes buffer that is safe for concurrent use: for what a
// server under test writes from its goroutines. The zero value is ready.
type Buffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int // 0: unbounded
}

// Write appends p (dropping it silently once a bound set by the package's
// process helpers is reached).
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && s.b.Len() > s.max {
		return len(p), nil
	}
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// processOutputMax keeps the output of a chatty server bounded.
const processOutputMax = 1 << 20

// Addr joins 127.0.0.1 and port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Context returns a context cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
