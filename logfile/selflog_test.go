package logfile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFileReportsIntoItself: the logger a File reports to may write into
// that File (slog.Default() on the application's log file is the common
// case). A report made while the File holds its lock (lines lost to a
// deleted file, noticed by Rotate) must not wait for that lock.
func TestFileReportsIntoItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "self.log")
	var f *File
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { return f.Write(p) }), nil))
	f, err := Open(path, WithCompression(false), WithLogger(logger))
	require.NoError(t, err)
	_, err = f.Write([]byte("lost\n"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	done := make(chan error, 1)
	go func() { done <- f.Rotate() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Rotate deadlocked: the report of the lost line waits for the File's own lock")
	}
	require.NoError(t, err)
	assert.Equal(t, int64(1), f.Dropped(), "the line written into the deleted file is counted")
	require.NoError(t, f.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "log lines lost", "the report is in the file")
}

// TestBufferedWriterReportsIntoItself: the logger of a BufferedWriter may
// write into it. A failed background write is reported while the queue is
// full and writers wait for room; the report must not wait for room that
// only the background writer, busy reporting, could make.
func TestBufferedWriterReportsIntoItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{release: make(chan struct{}), err: errors.New("no space left on device")}
		var bw *BufferedWriter
		logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { return bw.Write(p) }), nil))
		bw = newBuffered(t, rec, WithBufferSize(10), WithQueueSize(1), WithLogger(logger))
		for i := range 3 {
			_, err := fmt.Fprintf(bw, "line %03d\n", i)
			require.NoError(t, err)
			synctest.Wait()
		}
		written := make(chan struct{})
		go func() {
			defer close(written)
			_, err := fmt.Fprintf(bw, "line %03d\n", 3)
			assert.NoError(t, err)
		}()
		synctest.Wait() // one batch is being written, one queued, one filling, the fourth line waits
		close(rec.release)
		<-written
		assert.Error(t, bw.Close(), "the writes failed")
		assert.Positive(t, bw.Dropped())
	})
}
