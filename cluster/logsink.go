package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shipshape-go/shipshape/logfile"
)

// Defaults and bounds of the log sink (see WithLog).
const (
	// DefaultLogBufferSize is the size of each worker's buffer for each
	// log unless [WithLogBufferSize] says otherwise.
	DefaultLogBufferSize = 1 << 20
	minLogBufferSize     = 64 << 10
	maxLogBufferSize     = 1 << 30
)

// ErrLogDropped is wrapped by the error a [LogWriter] writer returns for a
// record it dropped: the worker's buffer stayed full for a second (the
// supervisor could not write the file fast enough), or the record is
// larger than the buffer. The supervisor counts and reports every dropped
// record.
var ErrLogDropped = errors.New("cluster: log record dropped")

// logConfig is what WithLog and WithLogBufferSize set.
type logConfig struct {
	specs      []logSpec
	bufferSize int // 0: DefaultLogBufferSize
	bufferSet  bool
	err        error // the first invalid WithLog
}

// logSpec is one WithLog.
type logSpec struct {
	name string
	path string
	opts []logfile.Option
}

// WithLog makes the supervisor the one writer of the log file at path,
// which its workers write through [LogWriter](name): one file for the
// whole service, whatever the number of workers and replacements, with one
// rotation, compression and retention, set by opts (the options of
// [logfile.Open]). Give it once per log, for example "access" for the
// access log and "app" for the application's records.
//
// The supervisor opens the file before it starts a worker (an error, bad
// options included, is what [Run] or [Serve] returns) and closes it once
// the last worker is gone. Each worker gets, for each log, a buffer in
// memory shared with the supervisor ([WithLogBufferSize]); a Write copies
// the record into it and returns, and the supervisor writes what the
// workers wrote to the file every 10ms, or sooner when a buffer is half
// full. Nothing a worker wrote is lost when it dies, however it dies (kill
// -9, a fatal error, the OOM killer): its buffer is the supervisor's
// memory, drained once the worker is reaped. A record the worker was still
// copying at that moment (its Write had not returned) is left out whole,
// never written half, and reported. Records
// reach the file whole, in the order each worker wrote them; those of
// different workers interleave by batch. A record that does not end in a
// newline gets one, so that records never run together.
//
// name is 1 to 32 characters of a-z, 0-9, '_' and '-', and each name and
// each path may be given once; anything else, an empty path and a nil
// option in opts are errors. Unless opts has a [logfile.WithLogger], the
// File reports to [WithLogger]'s logger. In a worker the option does
// nothing (the supervisor's settings hold, including after a SIGHUP
// upgrade). WithLog needs the supervisor of [Run] or [Serve]; processes
// of [Listen] open their own files.
func WithLog(name, path string, opts ...logfile.Option) Option {
	return func(c *config) {
		if c.logs.err != nil {
			return
		}
		if err := validLog(c.logs.specs, name, path, opts); err != nil {
			c.logs.err = err
			return
		}
		c.logs.specs = append(c.logs.specs, logSpec{name: name, path: path, opts: opts})
	}
}

func validLog(specs []logSpec, name, path string, opts []logfile.Option) error {
	if !validLogName(name) {
		return fmt.Errorf("cluster: WithLog: name %q, want 1 to 32 of a-z, 0-9, _ and -", name)
	}
	if path == "" {
		return fmt.Errorf("cluster: WithLog %q: empty path", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("cluster: WithLog %q: %w", name, err)
	}
	for i, o := range opts {
		if o == nil {
			return fmt.Errorf("cluster: WithLog %q: nil logfile option (#%d)", name, i+1)
		}
	}
	for _, s := range specs {
		if s.name == name {
			return fmt.Errorf("cluster: WithLog %q: name given twice", name)
		}
		if a, _ := filepath.Abs(s.path); a == abs {
			return fmt.Errorf("cluster: WithLog %q: path %s is log %q's already", name, path, s.name)
		}
	}
	return nil
}

func validLogName(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// WithLogBufferSize sets the size of the buffer each worker gets for each
// [WithLog] log (default [DefaultLogBufferSize], 1 MiB; between 64 KiB and
// 1 GiB, else an error), rounded up to a power of two. It is memory
// shared by the worker and the supervisor, and counts in the resident set
// of both (and so in [WithMemoryLimit]) once written. A worker whose
// buffer is full waits up to a second for the supervisor to make room and
// then drops the record (see [ErrLogDropped]); the supervisor drains the
// buffers every 10ms and when one is half full, so a full buffer means the
// file cannot take the lines as fast as the workers write them. The
// largest record a worker can write is the buffer size less 8 bytes.
func WithLogBufferSize(bytes int) Option {
	return func(c *config) { c.logs.bufferSize, c.logs.bufferSet = bytes, true }
}

// validate reports the first bad log setting.
func (lc *logConfig) validate() error {
	switch {
	case lc.err != nil:
		return lc.err
	case lc.bufferSet && (lc.bufferSize < minLogBufferSize || lc.bufferSize > maxLogBufferSize):
		return fmt.Errorf("cluster: WithLogBufferSize: %d bytes, want %d to %d", lc.bufferSize, minLogBufferSize, maxLogBufferSize)
	}
	return nil
}

// size is the buffer size to create: the setting rounded up to a power of
// two.
func (lc *logConfig) size() int {
	n := lc.bufferSize
	if n == 0 {
		n = DefaultLogBufferSize
	}
	p := minLogBufferSize
	for p < n {
		p <<= 1
	}
	return p
}

// LogWriter returns the writer of the supervisor's log called name
// ([WithLog]) and true in a worker of a supervisor that has that log;
// elsewhere (the supervisor itself, a process of [Listen], a program run
// without cluster) nil and false, so that the same main can open a file
// of its own instead:
//
//	w, ok := cluster.LogWriter("access")
//	if !ok {
//		f, err := logfile.Open("/var/log/app/access.log")
//		…
//		bw, err := logfile.NewBufferedWriter(f)
//		…
//		w = bw
//	}
//	logger := slog.New(accesslog.NewCombinedHandler(w, nil))
//
// The writer is safe for concurrent use, and each Write is one record,
// one or more whole lines: it copies p into memory the supervisor holds
// and returns, without a system call. Once Write returned, the record
// reaches the file even if the worker is killed the next instant; a
// BufferedWriter, by contrast, loses what it holds. It returns an error
// wrapping [ErrLogDropped] for a record it had to drop. It needs no Close
// and no Flush, and may be used from the start of main (before [Serve]) to
// the exit of the process.
//
// For application records, add [WorkerAttr] to the logger so that each
// line in the shared file says which process wrote it.
func LogWriter(name string) (io.Writer, bool) {
	return logWriter(name)
}

// WorkerAttr returns the attribute that says which process wrote a
// record: a group "cluster" with worker (the [WorkerID]) and pid (the
// process id), as the supervisor's own records carry them, so that one
// search finds everything about a worker. Outside a worker it returns the
// empty Attr, which handlers leave out. Add it to a logger on a
// [LogWriter]:
//
//	logger := slog.New(slog.NewJSONHandler(w, nil)).With(cluster.WorkerAttr())
//
// gives {"time":…,"level":"INFO","msg":"…","cluster":{"worker":1,"incarnation":7,"pid":4242},…}.
// A replacement worker gets the id of the worker it replaces; the
// incarnation ([WorkerIncarnation], left out when unknown, as in a
// process whose [EnvWorkerID] was set by hand) and the pid tell the two
// processes apart.
func WorkerAttr() slog.Attr {
	id, ok := WorkerID()
	if !ok {
		return slog.Attr{}
	}
	if inc, ok := WorkerIncarnation(); ok {
		return slog.Group(logGroup, slog.Int("worker", id), slog.Uint64("incarnation", inc), slog.Int("pid", os.Getpid()))
	}
	return slog.Group(logGroup, slog.Int("worker", id), slog.Int("pid", os.Getpid()))
}
