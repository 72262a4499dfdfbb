package sentryreport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/sentryreport"
)

// The crash tests run a real cluster: the test binary re-executes itself
// as the program when envCrashProgram is set (see TestMain), and its
// supervisor re-executes it for its workers. The supervisor reports every
// crash through a Reporter with a real sentry-go client to the test's
// loopback Sentry (SENTRYREPORT_TEST_DSN).
const envCrashProgram = "SENTRYREPORT_TEST_PROGRAM"

// The client options of the program, which every event must carry.
const (
	programRelease     = "shop@1.2.3"
	programEnvironment = "staging"
	programServerName  = "shop-7"
)

func crashProgramMain() int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if _, worker := cluster.WorkerID(); worker && os.Getenv("SENTRYREPORT_TEST_CRASH_AT_START") != "" {
		crashAtStart()
	}
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: os.Getenv("SENTRYREPORT_TEST_DSN"),
		Release: programRelease, Environment: programEnvironment, ServerName: programServerName})
	if err != nil {
		logger.Error("test program: sentry", "error", err.Error())
		return 1
	}
	rep, err := sentryreport.New(sentryreport.WithHub(sentry.NewHub(client, sentry.NewScope())))
	if err != nil {
		logger.Error("test program: sentryreport", "error", err.Error())
		return 1
	}
	crashLoop, _ := strconv.Atoi(os.Getenv("SENTRYREPORT_TEST_CRASHLOOP"))
	opts := []cluster.Option{
		cluster.WithLogger(logger),
		cluster.WithAddr("tcp", "127.0.0.1:0"),
		cluster.WithWorkers(1),
		cluster.WithRestartBackoff(10*time.Millisecond, 80*time.Millisecond),
		cluster.WithCrashLoop(max(crashLoop, 10), time.Minute),
		cluster.WithMemoryLimit(200 << 20),
		cluster.WithCrashHandler(rep.ReportCrash),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/crash", crashOnRequest)
	err = cluster.Serve(context.Background(), &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, opts...)
	client.Flush(10 * time.Second) // the supervisor's events, before it exits
	if err != nil {
		logger.Error("test program: exiting", "error", err.Error())
		return 1
	}
	return 0
}

// crashOnRequest answers, then crashes the worker the way kind says.
func crashOnRequest(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	if kind == "alloc" {
		crashAlloc(250)
	}
	fmt.Fprintf(w, "%d %s\n", os.Getpid(), kind)
	http.NewResponseController(w).Flush()
	switch kind {
	case "goroutine":
		go crashPanicGoroutine()
	case "mapwrites":
		crashConcurrentMapWrites()
	case "exit":
		crashExit()
	}
}

// The functions that crash are named, so that the tests find them in
// the events' stack traces.

func crashPanicGoroutine() {
	panic("test program: a plain goroutine panics")
}

func crashConcurrentMapWrites() {
	// The runtime sees two writers only if they run at once: with one P
	// (a machine or cgroup of one CPU, where GOMAXPROCS is 1) the writers
	// take turns and the map survives. More Ps than CPUs make the kernel
	// interrupt one writer mid-write, and the next one sees it.
	runtime.GOMAXPROCS(8)
	m := map[int]int{}
	for range 4 {
		go crashMapWriter(m)
	}
}

func crashMapWriter(m map[int]int) {
	for i := 0; ; i++ {
		m[i%1024] = i
	}
}

func crashExit() { os.Exit(3) }

var crashHeld [][]byte

func crashAlloc(mb int) {
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // touch every page: it counts in the resident set
		}
		crashHeld = append(crashHeld, b)
	}
}

func crashAtStart() {
	panic("test program: crash at start")
}

// record is one JSON log line of the program.
type record struct {
	Msg     string `json:"msg"`
	Cluster struct {
		Worker *int
		PID    int
		Reason string
		Addr   string
	} `json:"cluster"`
}

// program is a running test program.
type program struct {
	t   *testing.T
	cmd *exec.Cmd
	url string

	mu      sync.Mutex
	lines   []string
	records []record
	changed chan struct{}
	exited  chan struct{}
	readEOF chan struct{}
}

// startProgram starts the program reporting to dsn and waits until its
// worker is ready. args and env are the program's besides the harness's.
func startProgram(t *testing.T, dsn string, args []string, env ...string) *program {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), envCrashProgram+"=1", "SENTRYREPORT_TEST_DSN="+dsn,
		// The concurrent map writes are a data race on purpose: the race
		// detector's reports go to a file, not into the crash reports.
		"GORACE=atexit_sleep_ms=0 log_path="+filepath.Join(t.TempDir(), "race"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = w
	require.NoError(t, cmd.Start())
	w.Close()
	p := &program{t: t, cmd: cmd, changed: make(chan struct{}), exited: make(chan struct{}), readEOF: make(chan struct{})}
	go func() {
		defer close(p.readEOF)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			p.add(sc.Text())
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill() // the workers follow through the parent-death signal
			<-p.exited
		}
		select {
		case <-p.readEOF:
		case <-time.After(10 * time.Second):
			t.Error("a worker kept stderr open 10s after the supervisor exited")
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("program output:\n%s", strings.Join(p.lines, "\n"))
			p.mu.Unlock()
		}
	})
	started := p.wait(0, 10*time.Second, "cluster: supervisor started")
	p.url = "http://" + started.Cluster.Addr
	return p
}

func (p *program) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	var rec record
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg == "" {
		return
	}
	p.records = append(p.records, rec)
	close(p.changed)
	p.changed = make(chan struct{})
}

// mark returns the index of the next record.
func (p *program) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

// wait returns the first record with message msg at index from or later,
// waiting up to timeout.
func (p *program) wait(from int, timeout time.Duration, msg string) record {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, rec := range p.records[min(from, len(p.records)):] {
			if rec.Msg == msg {
				p.mu.Unlock()
				return rec
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			p.t.Fatalf("no %q record within %v", msg, timeout)
		}
	}
}

// count returns how many records with message msg arrived since from.
func (p *program) count(from int, msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, rec := range p.records[from:] {
		if rec.Msg == msg {
			n++
		}
	}
	return n
}

func (p *program) signal(sig os.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

func (p *program) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("supervisor still running after %v", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// get sends a request on a new connection, ignoring the outcome: the
// worker may die before it answers.
func get(url string) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
	}
}
