//go:build unix

package cluster

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/internal/shmring"
	"github.com/shipshape-go/shipshape/logfile"
)

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// records returns the messages logged, with their cluster attributes.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		out = append(out, r)
	}
	return out
}

// sinkWorker is a log sink in this process with one worker as the
// supervisor prepares it: its rings mapped a second time, as the worker
// maps them, with a Writer on each.
type sinkWorker struct {
	sink    *logSink
	p       *proc
	writers map[string]*shmring.Writer
	logs    *syncBuffer
}

func newSinkWorker(t *testing.T, wait time.Duration, opts ...Option) *sinkWorker {
	t.Helper()
	logs := &syncBuffer{}
	c, err := newConfig(append([]Option{WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))}, opts...))
	require.NoError(t, err)
	sink, err := newLogSink(c)
	require.NoError(t, err)
	t.Cleanup(sink.close)
	sw := &sinkWorker{sink: sink, p: &proc{id: 3, cmd: &exec.Cmd{}, done: make(chan struct{})},
		writers: map[string]*shmring.Writer{}, logs: logs}
	files, err := sink.prepare(sw.p)
	require.NoError(t, err)
	var bell *os.File
	for _, f := range files {
		if f.name == logBellName {
			bell = f.f
		}
	}
	for _, f := range files {
		if name, ok := strings.CutPrefix(f.name, logFilePrefix); ok {
			r, err := shmring.Map(f.f)
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			sw.writers[name] = shmring.NewWriter(r, bell, wait)
		}
	}
	sw.p.started()
	return sw
}

// exit is the worker's exit, as the supervisor sees it once it reaped it.
func (sw *sinkWorker) exit() { sw.p.abandon() }

func messages(recs []map[string]any) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r["msg"].(string))
	}
	return out
}

func TestSinkWritesWhatTheWorkerLeft(t *testing.T) {
	dir := t.TempDir()
	sw := newSinkWorker(t, time.Second, WithLog("access", filepath.Join(dir, "access.log")),
		WithLog("app", filepath.Join(dir, "app.log")))
	for _, l := range []string{"one\n", "two", "three\nfour\n"} {
		_, err := sw.writers["access"].Write([]byte(l))
		require.NoError(t, err)
	}
	_, err := sw.writers["app"].Write([]byte(`{"msg":"hello"}` + "\n"))
	require.NoError(t, err)
	sw.writers["app"].DieWriting(50)
	sw.exit()

	data, err := os.ReadFile(filepath.Join(dir, "access.log"))
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo\nthree\nfour\n", string(data), "every record, each ending in a newline")
	data, err = os.ReadFile(filepath.Join(dir, "app.log"))
	require.NoError(t, err)
	assert.Equal(t, `{"msg":"hello"}`+"\n", string(data), "nothing of the record the worker died writing")
	recs := sw.logs.records(t)
	require.Equal(t, []string{"cluster: log record interrupted by the worker's death; left out"}, messages(recs))
	assert.Equal(t, map[string]any{"log": "app", "worker": 3.0, "pid": 0.0}, recs[0]["cluster"])
}

func TestSinkReportsDroppedRecords(t *testing.T) {
	dir := t.TempDir()
	sw := newSinkWorker(t, 0, WithLog("access", filepath.Join(dir, "access.log")), WithLogBufferSize(64<<10))
	w := sw.writers["access"]
	line := []byte(strings.Repeat("x", 1023) + "\n")
	dropped := 0
	sw.sink.mu.Lock() // the sink cannot drain meanwhile, rung or not
	for range 70 {    // 64 fit
		if _, err := w.Write(line); err != nil {
			assert.ErrorIs(t, err, shmring.ErrFull)
			dropped++
		}
	}
	require.Equal(t, 6, dropped)
	for wr := range sw.sink.rings {
		sw.sink.drain(wr, false)
	}
	sw.sink.mu.Unlock()
	for range 3 {
		_, err := w.Write(make([]byte, 1<<20))
		assert.ErrorIs(t, err, shmring.ErrTooLarge)
	}
	sw.exit()

	recs := sw.logs.records(t)
	require.Equal(t, []string{"cluster: log records dropped by a worker", "cluster: log records dropped by a worker"},
		messages(recs), "at once, and the rest when the worker is gone")
	assert.Equal(t, map[string]any{"log": "access", "worker": 3.0, "pid": 0.0, "dropped": 6.0, "total": 6.0}, recs[0]["cluster"])
	assert.Equal(t, map[string]any{"log": "access", "worker": 3.0, "pid": 0.0, "dropped": 3.0, "total": 9.0}, recs[1]["cluster"])
	data, err := os.ReadFile(filepath.Join(dir, "access.log"))
	require.NoError(t, err)
	assert.Equal(t, 64, bytes.Count(data, []byte("\n")), "the records that fitted")
}

// TestSinkReportsFailedWrites: lines the file refuses are counted and
// reported, the first failure at once and then once per 10s.
func TestSinkReportsFailedWrites(t *testing.T) {
	dir := t.TempDir()
	sw := newSinkWorker(t, time.Second, WithLog("access", filepath.Join(dir, "logs", "access.log"),
		logfile.WithLogger(slog.New(slog.DiscardHandler))))
	// The directory replaced by a file: the File cannot open its path
	// again once it checks it (after 64 KiB).
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "logs")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "logs"), nil, 0o600))
	line := []byte(strings.Repeat("y", 99) + "\n")
	for range 3 {
		for range 1000 {
			_, err := sw.writers["access"].Write(line)
			require.NoError(t, err)
		}
		sw.sink.mu.Lock()
		for wr := range sw.sink.rings {
			sw.sink.drain(wr, false)
		}
		sw.sink.mu.Unlock()
	}
	sw.exit()
	recs := sw.logs.records(t)
	require.Len(t, messages(recs), 1, "the first failure, at once")
	sw.sink.close() // reports what was not reported yet
	recs = sw.logs.records(t)
	require.Equal(t, []string{"cluster: log write failed", "cluster: log write failed"}, messages(recs),
		"the first failure at once, the rest when the sink stops")
	lost := 0.0
	for _, r := range recs {
		attrs := r["cluster"].(map[string]any)
		assert.Equal(t, "access", attrs["log"])
		assert.Contains(t, attrs["error"], "logfile:")
		lost += attrs["lines"].(float64)
	}
	// The first drain's 1,000 lines went into the deleted file before the
	// File checked its path: the File counts that write itself.
	assert.Equal(t, 2000.0, lost, "the lines of the two writes the File refused")
	assert.Equal(t, int64(1), sw.sink.logs[0].file.Dropped(), "the write into the deleted file")
}

func TestSinkStopsReadingACorruptRing(t *testing.T) {
	dir := t.TempDir()
	sw := newSinkWorker(t, time.Second, WithLog("access", filepath.Join(dir, "access.log")))
	_, err := sw.writers["access"].Write([]byte("fine\n"))
	require.NoError(t, err)
	sw.sink.mu.Lock()
	for wr := range sw.sink.rings {
		sw.sink.drain(wr, false)
	}
	sw.sink.mu.Unlock()
	sw.writers["access"].Scribble()
	for range 3 {
		sw.sink.mu.Lock()
		for wr := range sw.sink.rings {
			sw.sink.drain(wr, false)
		}
		sw.sink.mu.Unlock()
	}
	sw.exit()
	data, err := os.ReadFile(filepath.Join(dir, "access.log"))
	require.NoError(t, err)
	assert.Equal(t, "fine\n", string(data))
	assert.Equal(t, []string{"cluster: log buffer corrupted; the worker's records are lost from here on"},
		messages(sw.logs.records(t)), "reported once")
}
