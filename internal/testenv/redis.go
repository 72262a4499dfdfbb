//go:build unix

package testenv

import (
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Redis is a redis-server started for one test, on a loopback port, with no
// persistence.
type Redis struct {
	Addr string // host:port on 127.0.0.1
	Port int

	t    testing.TB
	bin  string
	args []string
	proc *Process
}

// StartRedis starts a fresh redis-server on a free loopback port and stops
// it when the test ends. Extra arguments are passed to redis-server (for
// example "--cluster-enabled", "yes").
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	bin := LookPath(t, "redis-server", "redis-server")
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		r := &Redis{t: t, bin: bin, args: args, Port: FreePort(t)}
		r.Addr = Addr(r.Port)
		if last = r.start(); last == nil {
			return r
		}
	}
	t.Fatalf("testenv: redis-server did not start: %v", last)
	return nil
}

func (r *Redis) start() error {
	dir := r.t.TempDir()
	argv := append([]string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.Port),
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
	}, r.args...)
	cmd := exec.Command(r.bin, argv...)
	p := &Process{Name: "redis-server", cmd: cmd, out: &Buffer{max: processOutputMax}, done: make(chan struct{})}
	// Start through the shared helper, but report a lost port race as an
	// error so StartRedis can retry on another port.
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := startProcess(r.t, p); err != nil {
		return err
	}
	if err := p.waitAddr(r.Addr, 10*time.Second); err != nil {
		p.Kill()
		return err
	}
	r.proc = p
	return nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (r *Redis) Kill() { r.proc.Kill() }

// Restart starts the server again on the same port after Kill.
func (r *Redis) Restart() {
	r.t.Helper()
	r.proc.Kill()
	if err := r.start(); err != nil {
		r.t.Fatalf("testenv: restart redis-server on %s: %v", r.Addr, err)
	}
}

// Process is the running redis-server process.
func (r *Redis) Process() *Process { return r.proc }
