package logfile

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/shipshape-go/shipshape/internal/instrument/metrictest"
)

// TestMetricsFileAndBuffer: 10 lines of 40 bytes into a File that rotates
// at 100 bytes are 10 writes and 4 rotations (before lines 3, 5, 7 and 9); 7 lines through a
// BufferedWriter on it are 7 lines written (and one more write of the
// File, their batch); after Close nothing is reported any more.
func TestMetricsFileAndBuffer(t *testing.T) {
	mr := metrictest.New(t)
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := Open(path, WithMaxSize(100), WithCompression(false), WithMeterProvider(mr))
	require.NoError(t, err)
	line := strings.Repeat("x", 39) + "\n"
	for range 10 {
		_, err := f.Write([]byte(line))
		require.NoError(t, err)
	}
	byPath := attribute.String("shipshape.logfile.path", f.path)
	assert.Equal(t, int64(10), mr.Value(t, "shipshape.logfile.writes", byPath), "writes")
	assert.Equal(t, int64(4), mr.Value(t, "shipshape.logfile.rotations", byPath), "rotations: 2 lines per file")
	assert.Equal(t, int64(0), mr.Value(t, "shipshape.logfile.dropped", byPath), "dropped")
	assert.Equal(t, int64(0), mr.Value(t, "shipshape.logfile.compression.failures", byPath), "compression failures")

	bw, err := NewBufferedWriter(f, WithMeterProvider(mr))
	require.NoError(t, err)
	for range 7 {
		_, err := bw.Write([]byte("short\n"))
		require.NoError(t, err)
	}
	require.NoError(t, bw.Flush())
	assert.Equal(t, int64(7), mr.Value(t, "shipshape.logfile.buffer.lines.written", byPath), "lines written")
	assert.Equal(t, int64(0), mr.Value(t, "shipshape.logfile.buffer.lines.dropped", byPath), "lines dropped")
	assert.Equal(t, int64(11), mr.Value(t, "shipshape.logfile.writes", byPath), "the batch is one write")

	require.NoError(t, bw.Close())
	require.NoError(t, f.Close())
	assert.False(t, mr.Has(t, "shipshape.logfile.writes"), "a closed File is no longer observed")
	assert.False(t, mr.Has(t, "shipshape.logfile.buffer.lines.written"), "a closed BufferedWriter is no longer observed")
}

func TestWithMeterProviderNil(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "x.log"), WithMeterProvider(nil))
	require.EqualError(t, err, "logfile: WithMeterProvider: nil provider")
	_, err = NewBufferedWriter(&strings.Builder{}, WithMeterProvider(nil))
	require.EqualError(t, err, "logfile: WithMeterProvider: nil provider")
}
