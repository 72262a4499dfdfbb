package logfile

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an io.Writer that keeps each Write separately, and can be
// held (every Write waits for a receive on release) or made to fail.
type recorder struct {
	mu      sync.Mutex
	writes  []string
	release chan struct{} // nil: writes do not wait
	err     error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.release != nil {
		<-r.release
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.writes, "")
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestBufferedWriterBatchesWholeLinesInOrder(t *testing.T) {
	rec := &recorder{}
	bw := newBuffered(t, rec, WithBufferSize(100))
	want := lines(50, 30)
	for _, l := range want {
		n, err := bw.Write([]byte(l))
		require.NoError(t, err)
		require.Equal(t, len(l), n)
	}
	require.NoError(t, bw.Close())
	assert.Equal(t, strings.Join(want, ""), rec.String())
	calls := rec.calls()
	assert.Less(t, len(calls), 50, "writes are batched")
	for _, c := range calls {
		assert.True(t, strings.HasSuffix(c, "\n"), "batch %q ends with a whole line", c)
		assert.LessOrEqual(t, len(c), 100+30, "batch size")
	}
}

func TestBufferedWriterConcurrentWriters(t *testing.T) {
	rec := &recorder{}
	bw := newBuffered(t, rec, WithBufferSize(1024), WithQueueSize(2))
	const writers, each = 8, 2000
	pad := strings.Repeat("q", 20)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := fmt.Fprintf(bw, "w%d %d %s\n", g, i, pad); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, bw.Close())
	checkLines(t, rec.String(), writers, each)
}

func TestBufferedWriterFlushInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		bw := newBuffered(t, rec, WithFlushInterval(500*time.Millisecond))
		_, err := bw.Write([]byte("a\n"))
		require.NoError(t, err)
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		assert.Empty(t, rec.String(), "not written before the interval")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		assert.Equal(t, "a\n", rec.String(), "written at the interval")
		require.NoError(t, bw.Close())
	})
}

func TestBufferedWriterFlush(t *testing.T) {
	rec := &recorder{}
	bw := newBuffered(t, rec)
	defer bw.Close()
	_, err := bw.Write([]byte("one\n"))
	require.NoError(t, err)
	require.NoError(t, bw.Flush())
	assert.Equal(t, "one\n", rec.String(), "Flush writes everything before it returns")
	require.NoError(t, bw.Flush(), "an empty flush")
}

// fill writes four 10-byte lines into a BufferedWriter of 10-byte batches
// and a queue of one, on a writer that is held: the first batch is being
// written, the second queued, the third is the current one, and the fourth
// finds the queue full.
func fill(t *testing.T, drop bool) (*BufferedWriter, *recorder, chan error) {
	t.Helper()
	rec := &recorder{release: make(chan struct{})}
	bw := newBuffered(t, rec, WithBufferSize(10), WithQueueSize(1), WithDropWhenFull(drop))
	for i := range 3 {
		_, err := fmt.Fprintf(bw, "line %03d\n", i)
		require.NoError(t, err)
		synctest.Wait() // the writer takes the first batch
	}
	fourth := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(bw, "line %03d\n", 3)
		fourth <- err
	}()
	synctest.Wait()
	return bw, rec, fourth
}

func TestBufferedWriterBlocksWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bw, rec, fourth := fill(t, false)
		select {
		case err := <-fourth:
			t.Fatalf("Write returned (%v) while the queue was full", err)
		default:
		}
		close(rec.release)
		synctest.Wait()
		require.NoError(t, <-fourth, "the blocked Write goes through once there is room")
		require.NoError(t, bw.Close())
		assert.Equal(t, "line 000\nline 001\nline 002\nline 003\n", rec.String())
		assert.Zero(t, bw.Dropped())
	})
}

func TestBufferedWriterDropsWhenConfigured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bw, rec, fourth := fill(t, true)
		require.NoError(t, <-fourth, "a dropping Write does not block")
		assert.Equal(t, int64(1), bw.Dropped())
		close(rec.release)
		require.NoError(t, bw.Close())
		assert.Equal(t, "line 000\nline 001\nline 002\n", rec.String())
	})
}

func TestBufferedWriterCloseReleasesBlockedWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bw, rec, fourth := fill(t, false)
		closed := make(chan error, 1)
		go func() { closed <- bw.Close() }()
		synctest.Wait()
		assert.ErrorIs(t, <-fourth, ErrClosed, "a Write blocked at Close is refused")
		close(rec.release)
		require.NoError(t, <-closed)
		assert.Equal(t, "line 000\nline 001\nline 002\n", rec.String(), "what was accepted is written")
		_, err := bw.Write([]byte("late\n"))
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, bw.Close(), "Close is idempotent")
	})
}

func TestBufferedWriterWriteErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reports lockedBuffer
		rec := &recorder{err: errors.New("no space left on device")}
		bw := newBuffered(t, rec, WithBufferSize(10), WithLogger(slog.New(slog.NewTextHandler(&reports, nil))))
		for i := range 5 {
			n, err := fmt.Fprintf(bw, "line %03d\n", i)
			require.NoError(t, err, "writers are not told: requests keep being served")
			require.Equal(t, 9, n)
		}
		synctest.Wait()
		assert.Error(t, bw.Flush())
		synctest.Wait() // reports are handed over by a goroutine of their own
		assert.Equal(t, int64(5), bw.Dropped(), "the lines of failed batches are counted")
		assert.Equal(t, 1, strings.Count(reports.String(), "buffered write failed"), "one report per interval: %s", reports.String())
		time.Sleep(11 * time.Second)
		synctest.Wait() // the flusher has handled the ticks of those 11s
		_, _ = bw.Write([]byte("again\n"))
		_ = bw.Flush()
		synctest.Wait()
		assert.Equal(t, 2, strings.Count(reports.String(), "buffered write failed"))
		assert.Contains(t, reports.String(), "suppressed=")
		synctest.Wait()
		_, _ = bw.Write([]byte("last\n"))
		assert.Error(t, bw.Close(), "Close returns the error of its final write")
	})
}

func TestBufferedWriterDefaults(t *testing.T) {
	bw := newBuffered(t, &recorder{})
	defer bw.Close()
	assert.Equal(t, DefaultBufferSize, bw.cfg.size)
	assert.Equal(t, DefaultFlushInterval, bw.cfg.interval)
	assert.Equal(t, DefaultQueueSize, bw.cfg.queue)
	assert.False(t, bw.cfg.drop)
}

// TestNewBufferedWriterErrors: every invalid input is an error, with no
// BufferedWriter (and no goroutine) left behind; none is replaced by a
// default.
func TestNewBufferedWriterErrors(t *testing.T) {
	var nilRecorder *recorder
	tests := []struct {
		name string
		w    io.Writer
		opts []Option
		want string
	}{
		{"nil writer", nil, nil, "logfile: writer is nil"},
		{"typed nil writer", nilRecorder, nil, "logfile: writer is nil"},
		{"nil option", &recorder{}, []Option{WithBufferSize(10), nil}, "logfile: nil option"},
		{"zero buffer size", &recorder{}, []Option{WithBufferSize(0)}, "logfile: buffer size must be >= 1"},
		{"negative buffer size", &recorder{}, []Option{WithBufferSize(-1)}, "logfile: buffer size must be >= 1"},
		{"zero flush interval", &recorder{}, []Option{WithFlushInterval(0)}, "logfile: flush interval must be >= 1ms"},
		{"flush interval in nanoseconds", &recorder{}, []Option{WithFlushInterval(1)}, "logfile: flush interval must be >= 1ms"},
		{"zero queue", &recorder{}, []Option{WithQueueSize(0)}, "logfile: queue size must be >= 1"},
		{"nil logger", &recorder{}, []Option{WithLogger(nil)}, "logfile: logger is nil"},
		{"an option of Open", &recorder{}, []Option{WithMaxSize(1 << 20)}, "logfile: WithMaxSize is an option of Open, not of NewBufferedWriter"},
		{"compression is an option of Open", &recorder{}, []Option{WithCompression(true)}, "logfile: WithCompression is an option of Open, not of NewBufferedWriter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bw, err := NewBufferedWriter(tt.w, tt.opts...)
			assert.Nil(t, bw)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// newBuffered is NewBufferedWriter for options that are valid.
func newBuffered(t *testing.T, w io.Writer, opts ...Option) *BufferedWriter {
	t.Helper()
	bw, err := NewBufferedWriter(w, opts...)
	require.NoError(t, err)
	return bw
}
