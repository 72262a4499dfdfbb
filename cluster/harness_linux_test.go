package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// event is one JSON log line of the program under test.
type event struct {
	Msg string `json:"msg"`
	// The supervisor's attributes, in their group.
	clusterAttrs `json:"cluster"`
	// The test program's own attributes.
	ProgError string `json:"error"`
	ProgPID   string `json:"pid"`  // CLUSTER_TEST_LOG_PID
	FDs       string `json:"fds"`  // "test program: child"
	Own       string `json:"own"`  // "test program: child"
	Vars      string `json:"vars"` // "test program: child"

	line string // as logged
}

// clusterAttrs are the attributes the supervisor logs, in the "cluster"
// group.
type clusterAttrs struct {
	Worker      *int          `json:"worker"`
	Incarnation uint64        `json:"incarnation"`
	PID         int           `json:"pid"`
	AddrAdmin   string        `json:"addr_admin"` // WithNamedAddr("admin", …)
	Reason      string        `json:"reason"`
	Status      string        `json:"status"`
	Backoff     time.Duration `json:"backoff"`
	Addr        string        `json:"addr"`
	Error       string        `json:"error"`
}

func (e event) String() string {
	w := -1
	if e.Worker != nil {
		w = *e.Worker
	}
	return fmt.Sprintf("%q worker=%d pid=%d reason=%q status=%q backoff=%v error=%q", e.Msg, w, e.PID, e.Reason, e.Status, e.Backoff, e.Error)
}

// testCluster is a running test program (a supervisor and its workers).
type testCluster struct {
	t    testing.TB
	cmd  *exec.Cmd
	url  string // http://host:port of the shared socket
	addr string

	mu      sync.Mutex
	lines   []string
	events  []event
	changed chan struct{} // closed and replaced on every new event

	exited  chan struct{} // closed when the supervisor has exited
	readEOF chan struct{} // closed when every process closed stderr
}

// startProgram starts the test binary (or exe when not empty) as the
// program in mode with the given extra environment and waits for the
// supervisor's address and for want workers to be ready.
func startProgram(t testing.TB, exe, mode string, want int, env ...string) *testCluster {
	t.Helper()
	if exe == "" {
		var err error
		exe, err = os.Executable()
		require.NoError(t, err)
	}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envProgram+"="+mode)
	// A race-enabled program sleeps 1s at exit by default; workers exit
	// often here.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = w
	require.NoError(t, cmd.Start())
	w.Close()
	c := &testCluster{t: t, cmd: cmd, changed: make(chan struct{}), exited: make(chan struct{}), readEOF: make(chan struct{})}
	go func() {
		defer close(c.readEOF)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.add(sc.Text())
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = cmd.Process.Kill() // the workers follow through the parent-death signal
			<-c.exited
		}
		select {
		case <-c.readEOF:
		case <-time.After(10 * time.Second):
			t.Error("a worker kept stderr open 10s after the supervisor exited")
		}
		c.mu.Lock()
		for _, l := range c.lines {
			if strings.Contains(l, "WARNING: DATA RACE") {
				t.Error("the race detector found a data race in the program (output below)")
				break
			}
		}
		c.mu.Unlock()
		if t.Failed() {
			c.mu.Lock()
			t.Logf("program output:\n%s", strings.Join(c.lines, "\n"))
			c.mu.Unlock()
		}
	})
	e := c.waitEvent(0, 10*time.Second, func(e event) bool { return e.Msg == "cluster: supervisor started" })
	c.addr = e.Addr
	c.url = "http://" + e.Addr
	if want > 0 {
		c.waitReady(0, want, 20*time.Second)
	}
	return c
}

func (c *testCluster) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, line)
	e := event{line: line}
	if json.Unmarshal([]byte(line), &e) != nil || e.Msg == "" {
		return
	}
	c.events = append(c.events, e)
	close(c.changed)
	c.changed = make(chan struct{})
}

// mark returns the index of the next event, for waitEvent's from.
func (c *testCluster) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// waitEvent returns the first event at index from or later that matches,
// waiting up to timeout for it; it fails the test when none comes.
func (c *testCluster) waitEvent(from int, timeout time.Duration, match func(event) bool) event {
	c.t.Helper()
	e, ok := c.findEvent(from, timeout, match)
	if !ok {
		c.t.Fatalf("no matching log event within %v", timeout)
	}
	return e
}

func (c *testCluster) findEvent(from int, timeout time.Duration, match func(event) bool) (event, bool) {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for i := from; i < len(c.events); i++ {
			if match(c.events[i]) {
				e := c.events[i]
				c.mu.Unlock()
				return e, true
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return event{}, false
		}
	}
}

// eventsSince returns the events at index from or later that match.
func (c *testCluster) eventsSince(from int, match func(event) bool) []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event
	for _, e := range c.events[from:] {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitReady waits until n "worker ready" events arrived since from and
// returns them by worker id.
func (c *testCluster) waitReady(from, n int, timeout time.Duration) map[int]event {
	c.t.Helper()
	ready := map[int]event{}
	deadline := time.Now().Add(timeout)
	for len(ready) < n {
		e := c.waitEvent(from, time.Until(deadline), func(e event) bool { return e.Msg == "cluster: worker ready" })
		ready[*e.Worker] = e
		from = c.indexOf(e) + 1
	}
	return ready
}

func (c *testCluster) indexOf(e event) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.events {
		if x == e {
			return i
		}
	}
	return -1
}

func (c *testCluster) signal(sig syscall.Signal) {
	c.t.Helper()
	require.NoError(c.t, c.cmd.Process.Signal(sig))
}

// waitExit waits for the supervisor to exit and returns its exit code.
func (c *testCluster) waitExit(timeout time.Duration) int {
	c.t.Helper()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		c.t.Fatalf("supervisor still running after %v", timeout)
	}
	return c.cmd.ProcessState.ExitCode()
}

// fresh is a client that opens a new connection for every request, so
// that every request goes through the accept queue.
func fresh() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// whoServes sends n requests over new connections, conc at a time, and
// counts the answers by worker pid; errors are returned, not counted.
func whoServes(url string, n, conc int) (map[int]int, error) {
	client := fresh()
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	counts := map[int]int{}
	var errs []error
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range conc {
		wg.Go(func() {
			for range next {
				pid, err := getPID(client, url)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					counts[pid]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts, errors.Join(errs...)
}

func getPID(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("body %q", b)
	}
	return strconv.Atoi(f[0])
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S …".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func pidsOf(ready map[int]event) []int {
	var pids []int
	for _, e := range ready {
		pids = append(pids, e.PID)
	}
	return pids
}
