//go:build unix

package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

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
	setPdeathsig(p.cmd.SysProcAttr)
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

// processOutputMax keeps the output of a chatty server bounded.
const processOutputMax = 1 << 20
