package cluster

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/logfile"
)

// readLogs returns the lines of the log file base in dir and of its
// rotated files, compressed or not, and the number of rotated files.
func readLogs(t *testing.T, dir, base string) ([]string, int) {
	t.Helper()
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext)
	names, err := filepath.Glob(filepath.Join(dir, prefix+"*"+ext+"*"))
	require.NoError(t, err)
	var lines []string
	backups := 0
	for _, name := range names {
		var r io.Reader
		f, err := os.Open(name)
		require.NoError(t, err)
		r = f
		if strings.HasSuffix(name, ".gz") {
			gz, err := gzip.NewReader(f)
			require.NoError(t, err, name)
			r = gz
		}
		if filepath.Base(name) != base {
			backups++
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		require.NoError(t, sc.Err(), name)
		f.Close()
	}
	return lines, backups
}

// accessLine is the combined line of a POST /req request; every line of the
// access log must match it whole.
var accessLine = regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "POST /req\?id=(\d+) HTTP/1\.1" (\d{3}) \d+ "-" "Go-http-client/1\.1"$`)

// TestLogsSurviveKills: under load (16 clients as fast as they can; 1,000
// to 20,000 requests a second here) on two workers, one of them is killed
// with SIGKILL every 300ms for at least 5s and 8 kills.
// Every request the client got a 200 for has its line in the one access
// log (rotated several times meanwhile), whole, and no line is there
// twice.
//
// Before WithLog (CLUSTER_TEST_LOG_MODE=files: each worker's own file
// behind a BufferedWriter), the same run loses the lines of the last
// second of every killed worker.
func TestLogsSurviveKills(t *testing.T) {
	dir := t.TempDir()
	env := []string{"CLUSTER_TEST_LOGDIR=" + dir, "CLUSTER_TEST_LOG_MAXSIZE=65536"}
	if m := os.Getenv("CLUSTER_TEST_LOG_MODE"); m != "" {
		env = append(env, "CLUSTER_TEST_LOG_MODE="+m) // to watch the test fail without the sink
	}
	c := startProgram(t, "", "logs", 2, env...)

	// At least runFor and 8 kills; a loaded machine that starts workers
	// slowly gets up to maxRun. The point is lines in flight at each kill,
	// not a rate, which is the machine's.
	const runFor, maxRun = 5 * time.Second, 20 * time.Second
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), maxRun)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	answered := map[int64]bool{} // ids answered with a 200
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				// POST: the client does not resend it on another
				// connection when the worker died under it, which would
				// log one id twice.
				id := next.Add(1)
				resp, err := client.Post(fmt.Sprintf("%s/req?id=%d", c.url, id), "", nil)
				if err != nil {
					failed.Add(1) // a connection to the killed worker
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "ok ") {
					mu.Lock()
					answered[id] = true
					mu.Unlock()
				}
			}
		})
	}

	// Every 300ms, kill the worker of the other slot, or of this one when
	// the other's replacement is not ready yet (a race-enabled worker under
	// load can take longer than 300ms to start).
	kills := 0
	killed := map[int]bool{}
	tick := time.NewTicker(300 * time.Millisecond)
	for slot := 0; ctx.Err() == nil; {
		select {
		case <-ctx.Done():
			continue
		case <-tick.C:
		}
		if time.Since(start) >= runFor && kills >= 8 {
			cancel()
			break
		}
		for _, s := range []int{slot, 1 - slot} {
			ready := c.eventsSince(0, func(e event) bool { return e.Msg == "cluster: worker ready" && *e.Worker == s })
			if pid := ready[len(ready)-1].PID; !killed[pid] && syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed[pid] = true
				kills++
				slot = 1 - s
				break
			}
		}
	}
	tick.Stop()
	wg.Wait()
	from := c.mark()
	c.signal(syscall.SIGTERM)
	assert.Zero(t, c.waitExit(30*time.Second), "exit status after SIGTERM")
	elapsed := time.Since(start)
	t.Logf("%d requests answered with 200 in %v (%.0f/s), %d failed, %d workers killed", len(answered), elapsed.Round(time.Millisecond), float64(len(answered))/elapsed.Seconds(), failed.Load(), kills)
	require.GreaterOrEqual(t, len(answered), 2000, "requests answered")
	require.GreaterOrEqual(t, kills, 8, "workers killed")
	assert.Empty(t, c.eventsSince(from, func(e event) bool { return strings.Contains(e.Msg, "dropped") }), "records dropped")

	base := "access.log"
	if os.Getenv("CLUSTER_TEST_LOG_MODE") == "files" {
		base = "access-*.log"
	}
	lines, backups := readLogs(t, dir, base)
	t.Logf("%d lines in the access log and %d rotated files", len(lines), backups)
	assert.GreaterOrEqual(t, backups, 3, "the file rotated during the run")
	seen := map[int64]int{}
	for _, l := range lines {
		m := accessLine.FindStringSubmatch(l)
		if !assert.NotNil(t, m, "a torn or foreign line: %q", l) {
			continue
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		seen[id]++
	}
	var missing, twice []int64
	for id := range answered {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range seen {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	slices.Sort(missing)
	slices.Sort(twice)
	assert.Zero(t, len(missing), "answered requests without a line, of %d (the first: %v)", len(answered), missing[:min(10, len(missing))])
	assert.Zero(t, len(twice), "requests logged more than once (the first: %v)", twice[:min(10, len(twice))])
}

// appRecord is a line of the application log.
type appRecord struct {
	Level   string `json:"level"`
	Msg     string `json:"msg"`
	ID      string `json:"id"`
	Cluster struct {
		Worker *int `json:"worker"`
		PID    int  `json:"pid"`
	} `json:"cluster"`
}

// TestAppLogSaysWhichWorker: the workers' application records land in the
// one application log with their levels, each saying which worker and
// which process wrote it.
func TestAppLogSaysWhichWorker(t *testing.T) {
	dir := t.TempDir()
	c := startProgram(t, "", "logs", 2, "CLUSTER_TEST_LOGDIR="+dir)
	ready := c.waitReady(0, 2, 10*time.Second)
	byPID := map[int]int{}
	for id, e := range ready {
		byPID[e.PID] = id
	}
	client := fresh()
	answeredBy := map[string]int{} // request id → pid
	for i := 0; i < 200 && len(answeredBy) < 200; i++ {
		id := strconv.Itoa(i)
		resp, err := client.Get(c.url + "/app?id=" + id)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(body), "ok ")))
		require.NoError(t, err, "body %q", body)
		answeredBy[id] = pid
	}
	c.signal(syscall.SIGTERM)
	require.Zero(t, c.waitExit(30*time.Second))

	lines, _ := readLogs(t, dir, "app.log")
	serving := map[int]int{} // worker id → pid
	records := 0
	for _, l := range lines {
		var r appRecord
		require.NoError(t, json.Unmarshal([]byte(l), &r), "line %q", l)
		require.NotNil(t, r.Cluster.Worker, "line %q says which worker wrote it", l)
		switch r.Msg {
		case "test program: worker serving":
			assert.Equal(t, "INFO", r.Level)
			serving[*r.Cluster.Worker] = r.Cluster.PID
		case "test program: app record":
			records++
			assert.Equal(t, "WARN", r.Level, "the level is kept")
			assert.Equal(t, answeredBy[r.ID], r.Cluster.PID, "record %s: the pid of the worker that answered", r.ID)
			assert.Equal(t, byPID[r.Cluster.PID], *r.Cluster.Worker, "record %s: the worker id of that pid", r.ID)
		}
	}
	assert.Equal(t, map[int]int{0: ready[0].PID, 1: ready[1].PID}, serving, "each worker's start record")
	assert.Equal(t, len(answeredBy), records, "one record per request")
}

// TestKilledWorkerLeavesNoTornRecord: a worker killed in the middle of a
// log record (here: stopped there on purpose, then killed) gets the
// records it wrote before into the file, and nothing of the interrupted
// one, which the supervisor reports.
func TestKilledWorkerLeavesNoTornRecord(t *testing.T) {
	dir := t.TempDir()
	c := startProgram(t, "", "logs", 1, "CLUSTER_TEST_LOGDIR="+dir, "CLUSTER_TEST_WORKERS=1", "CLUSTER_TEST_LOG_DIE_WRITING=1")
	victim := c.waitReady(0, 1, 10*time.Second)[0].PID
	from := c.mark()
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	e := c.waitEvent(from, 10*time.Second, func(e event) bool {
		return e.Msg == "cluster: log record interrupted by the worker's death; left out" && e.PID == victim
	})
	var attrs struct {
		Cluster struct {
			Log string `json:"log"`
		} `json:"cluster"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.line), &attrs))
	assert.Equal(t, "app", attrs.Cluster.Log)
	c.waitReady(from, 1, 10*time.Second)
	from = c.mark()
	c.signal(syscall.SIGTERM)
	require.Zero(t, c.waitExit(30*time.Second))

	lines, _ := readLogs(t, dir, "app.log")
	var victims []string
	for _, l := range lines {
		var r appRecord
		require.NoError(t, json.Unmarshal([]byte(l), &r), "a torn line: %q", l)
		if r.Cluster.PID == victim {
			victims = append(victims, r.Msg)
		}
	}
	assert.Equal(t, []string{"test program: worker serving", "test program: before the interrupted record"},
		victims, "the killed worker's records")
	assert.Len(t, c.eventsSince(from, func(e event) bool {
		return e.Msg == "cluster: log record interrupted by the worker's death; left out"
	}), 1, "the replacement, stopped by SIGTERM in the same state, is reported too")
}

// TestLogWriterOutsideAWorker: this test process is no worker.
func TestLogWriterOutsideAWorker(t *testing.T) {
	w, ok := LogWriter("access")
	assert.False(t, ok)
	assert.Nil(t, w)
	assert.Equal(t, slog.Attr{}, WorkerAttr(), "no attribute outside a worker")
	t.Setenv(EnvWorkerID, "3")
	a := WorkerAttr()
	assert.Equal(t, fmt.Sprintf("cluster=[worker=3 pid=%d]", os.Getpid()), a.String(), "a worker id set by hand")
}

func TestLogOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr string // substring; empty: valid
	}{
		{"two logs", []Option{WithLog("access", "a.log"), WithLog("app_2-x", "b.log", logfile.WithMaxSize(1<<20))}, ""},
		{"buffer bounds", []Option{WithLogBufferSize(64 << 10), WithLogBufferSize(1 << 30)}, ""},
		{"empty name", []Option{WithLog("", "a.log")}, `cluster: WithLog: name "", want 1 to 32 of a-z, 0-9, _ and -`},
		{"upper case", []Option{WithLog("Access", "a.log")}, `name "Access"`},
		{"comma", []Option{WithLog("a,b", "a.log")}, `name "a,b"`},
		{"too long", []Option{WithLog(strings.Repeat("a", 33), "a.log")}, "want 1 to 32"},
		{"empty path", []Option{WithLog("access", "")}, `cluster: WithLog "access": empty path`},
		{"nil logfile option", []Option{WithLog("access", "a.log", logfile.WithMaxSize(1), nil)}, `cluster: WithLog "access": nil logfile option (#2)`},
		{"name twice", []Option{WithLog("access", "a.log"), WithLog("access", "b.log")}, `cluster: WithLog "access": name given twice`},
		{"path twice", []Option{WithLog("access", "a.log"), WithLog("app", "./a.log")}, `cluster: WithLog "app": path ./a.log is log "access"'s already`},
		{"buffer too small", []Option{WithLogBufferSize(64<<10 - 1)}, "cluster: WithLogBufferSize: 65535 bytes, want 65536 to 1073741824"},
		{"buffer zero", []Option{WithLogBufferSize(0)}, "cluster: WithLogBufferSize: 0 bytes"},
		{"buffer too big", []Option{WithLogBufferSize(1<<30 + 1)}, "cluster: WithLogBufferSize: 1073741825 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConfig(tt.opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, c)
		})
	}
}

func TestLogBufferSize(t *testing.T) {
	for _, tt := range []struct{ set, want int }{
		{0, DefaultLogBufferSize}, {64 << 10, 64 << 10}, {100 << 10, 128 << 10}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20},
	} {
		lc := logConfig{bufferSize: tt.set}
		assert.Equal(t, tt.want, lc.size(), "size for %d", tt.set)
	}
}

// TestBadLogFileOptionStopsTheStart: an option logfile.Open refuses is
// the error of Run, before any worker starts.
func TestBadLogFileOptionStopsTheStart(t *testing.T) {
	err := Run(context.Background(), func(context.Context, net.Listener) error { return nil },
		WithAddr("tcp", "127.0.0.1:0"), WithLogger(slog.New(slog.DiscardHandler)),
		WithLog("access", filepath.Join(t.TempDir(), "access.log"), logfile.WithMaxSize(-1)))
	require.Error(t, err)
	assert.Equal(t, `cluster: WithLog "access": logfile: max size must be >= 0`, err.Error())
}
