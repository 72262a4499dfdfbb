package logfile

import (
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/instrument"
	"github.com/shipshape-go/shipshape/internal/nilcheck"
)

// WithMeterProvider sets where a [File]'s or a [BufferedWriter]'s metrics
// go (default: the global provider, otel.GetMeterProvider() at the time of
// Open or NewBufferedWriter, which records nothing until the application
// sets one). They are read at each collection from the counts the writer
// keeps anyway, so writing costs nothing more, and stop at Close. A File
// records, by shipshape.logfile.path, its writes
// (shipshape.logfile.writes), the writes lost to a deleted file
// (shipshape.logfile.dropped, see [File.Dropped]), its rotations and its
// failed compressions; a BufferedWriter the lines it wrote and dropped
// (shipshape.logfile.buffer.lines.written, ….dropped, see
// [BufferedWriter.Dropped]). docs/metrics.md lists them. nil is an error.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		o.set(forFile|forBuffer, "WithMeterProvider", func() error {
			if nilcheck.Is(mp) {
				return errors.New("logfile: WithMeterProvider: nil provider")
			}
			o.meter = mp
			return nil
		})
	}
}

// observeFile registers f's counts with the provider; the returned
// function unregisters them.
func observeFile(mp metric.MeterProvider, f *File) (func(), error) {
	m := instrument.New(mp, "logfile")
	writes := m.ObservableCounter("shipshape.logfile.writes", "{write}", "Writes into the log file.")
	dropped := m.ObservableCounter("shipshape.logfile.dropped", "{write}",
		"Writes that reached a log file after it was deleted, before it was opened again.")
	rotations := m.ObservableCounter("shipshape.logfile.rotations", "{rotation}", "Rotations of the log file.")
	failures := m.ObservableCounter("shipshape.logfile.compression.failures", "{file}",
		"Rotated log files whose compression failed (tried again at the next rotation).")
	a := instrument.NewAttrs(attribute.String("shipshape.logfile.path", f.path))
	unregister := m.Observe(func(o instrument.Observer) {
		o.Counter(writes, f.writes.Load(), a)
		o.Counter(dropped, f.dropped.Load(), a)
		o.Counter(rotations, f.rotations.Load(), a)
		o.Counter(failures, f.compressFailures.Load(), a)
	}, writes, dropped, rotations, failures)
	return unregister, m.Err()
}

// observeBuffer registers bw's counts with the provider; the returned
// function unregisters them. A BufferedWriter on a File is named by the
// File's path.
func observeBuffer(mp metric.MeterProvider, bw *BufferedWriter) (func(), error) {
	m := instrument.New(mp, "logfile")
	written := m.ObservableCounter("shipshape.logfile.buffer.lines.written", "{line}",
		"Lines a BufferedWriter wrote to its writer.")
	dropped := m.ObservableCounter("shipshape.logfile.buffer.lines.dropped", "{line}",
		"Lines a BufferedWriter dropped: its queue was full (WithDropWhenFull), or writing their batch failed.")
	a := instrument.NewAttrs()
	if f, ok := bw.w.(*File); ok {
		a = instrument.NewAttrs(attribute.String("shipshape.logfile.path", f.path))
	}
	unregister := m.Observe(func(o instrument.Observer) {
		o.Counter(written, bw.written.Load(), a)
		o.Counter(dropped, bw.dropped.Load(), a)
	}, written, dropped)
	return unregister, m.Err()
}
