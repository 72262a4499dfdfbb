//go:build unix

package cluster

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shipshape-go/shipshape/internal/shmring"
	"github.com/shipshape-go/shipshape/logfile"
)

// The log sink: the part of the supervisor that owns the files of WithLog
// and drains what the workers write into them.
//
// Each worker gets one shmring per log (a sealed memfd the supervisor
// created and mapped, inherited as "log:<name>") and the write end of the
// bell pipe ("logbell"). A worker's Write is a copy into its ring; the
// supervisor drains every ring every logDrainEvery, and at once when a
// worker rings the bell (its ring past half full), into the log's one
// logfile.File. When a worker has been reaped, its rings are drained a
// last time and unmapped; a record it was copying when it died is not in
// its ring at all (see shmring). So a line is safe once Write returned: it
// sits in memory the supervisor holds.
//
// The alternative, a pipe per worker read by the supervisor, is as safe
// but costs a write(2) per line: 0.6 to 1µs measured, 4 to 7 times what
// the ring costs, which is what a BufferedWriter costs (BenchmarkLogLine).
const (
	// logDrainEvery is how often the supervisor drains the rings: the
	// latency from Write to the file, and what a kill -9 of the
	// supervisor itself can lose.
	logDrainEvery = 10 * time.Millisecond
	// logWait bounds how long a worker's Write waits for room in a full
	// ring before it drops the record.
	logWait = time.Second
	// logBatch is the most the supervisor hands the File in one Write
	// (a longer line goes whole).
	logBatch = 256 << 10
	// logReportEvery spaces the reports of dropped records of one ring.
	logReportEvery = 10 * time.Second
)

// Names of the inherited descriptors.
const (
	logFilePrefix = "log:"
	logBellName   = "logbell"
)

type logSink struct {
	c     *config
	logs  []*sinkLog
	size  int      // of each ring
	bellR *os.File // the supervisor's end of the bell
	bellW *os.File // handed to every worker
	kick  chan struct{}

	mu    sync.Mutex // held while draining; guards rings
	rings map[*workerRing]struct{}

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// sinkLog is one WithLog log.
type sinkLog struct {
	name string
	file *logfile.File
	// Failed writes to the file not reported yet (suppressed), and the
	// lines they lost; reported at most once per logReportEvery.
	failedAt   time.Time
	failErr    error
	failLines  int
	suppressed int
}

// workerRing is one worker's ring for one log.
type workerRing struct {
	log    *sinkLog
	ring   *shmring.Ring
	rd     *shmring.Reader
	memfd  *os.File // until the worker has started
	worker int
	pid    int
	broken bool // corrupted: nothing more is read

	reported   uint64 // dropped records reported so far
	reportedAt time.Time
}

// newLogSink opens the files of c's WithLog options; nil without any.
func newLogSink(c *config) (*logSink, error) {
	if len(c.logs.specs) == 0 {
		return nil, nil
	}
	s := &logSink{c: c, size: c.logs.size(), kick: make(chan struct{}, 1),
		rings: map[*workerRing]struct{}{}, stop: make(chan struct{})}
	for _, spec := range c.logs.specs {
		opts := spec.opts
		if c.logger != nil {
			opts = append([]logfile.Option{logfile.WithLogger(c.logger)}, opts...)
		}
		f, err := logfile.Open(spec.path, opts...)
		if err != nil {
			s.closeFiles()
			return nil, fmt.Errorf("cluster: WithLog %q: %w", spec.name, err)
		}
		s.logs = append(s.logs, &sinkLog{name: spec.name, file: f})
	}
	// Both ends non-blocking before os.NewFile wraps them: the
	// supervisor's end is then read through the poller, and handing the
	// other to a worker (os/exec calls Fd) leaves it non-blocking, which a
	// worker's ring relies on to never wait on a full pipe.
	var err error
	if s.bellR, s.bellW, err = nonblockingPipe(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("cluster: log bell: %w", err)
	}
	s.wg.Go(s.listen)
	s.wg.Go(s.run)
	return s, nil
}

// nonblockingPipe is os.Pipe with both ends non-blocking before os.NewFile
// wraps them (so that Fd, which os/exec calls on what a child inherits,
// leaves them so) and close-on-exec.
func nonblockingPipe() (r, w *os.File, err error) {
	var p [2]int
	syscall.ForkLock.RLock() // no fork between the pipe and close-on-exec
	err = syscall.Pipe(p[:])
	if err == nil {
		syscall.CloseOnExec(p[0])
		syscall.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	for _, fd := range p {
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(p[0])
			syscall.Close(p[1])
			return nil, nil, err
		}
	}
	return os.NewFile(uintptr(p[0]), "cluster-logbell-r"), os.NewFile(uintptr(p[1]), "cluster-logbell"), nil
}

func (s *logSink) log() *slog.Logger { return s.c.log() }

// listen turns the bytes on the bell into kicks of run.
func (s *logSink) listen() {
	var b [64]byte
	for {
		if _, err := s.bellR.Read(b[:]); err != nil {
			return // closed by close
		}
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// run drains the rings every logDrainEvery and when kicked.
func (s *logSink) run() {
	t := time.NewTicker(logDrainEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		s.mu.Lock()
		for wr := range s.rings {
			s.drain(wr, false)
		}
		for _, l := range s.logs {
			s.reportFailures(l, false)
		}
		s.mu.Unlock()
	}
}

// drain writes what wr holds into its log's file; final: the worker is
// gone, and this is the last drain of its ring. s.mu is held.
func (s *logSink) drain(wr *workerRing, final bool) {
	if wr.broken {
		return
	}
	l := wr.log
	// The chunks are whole lines lying in the ring: the File writes them
	// from there, one write(2) each, without a copy.
	_, err := wr.rd.Drain(logBatch, func(chunk []byte) error {
		if _, err := l.file.Write(chunk); err != nil {
			s.writeFailed(l, err, bytes.Count(chunk, newline))
		}
		return nil
	})
	if err != nil {
		wr.broken = true
		s.log().Error("cluster: log buffer corrupted; the worker's records are lost from here on",
			"log", l.name, "worker", wr.worker, "pid", wr.pid, "error", err.Error())
	}
	if final && wr.rd.Interrupted() {
		s.log().Warn("cluster: log record interrupted by the worker's death; left out",
			"log", l.name, "worker", wr.worker, "pid", wr.pid)
	}
	s.reportDropped(wr, final)
}

var newline = []byte{'\n'}

// writeFailed counts lines lost to a failed write to l's file and reports
// them: the first failure at once, then at most once per logReportEvery
// with the lines lost since the last report, so that a broken disk does
// not produce a record per batch. s.mu is held.
func (s *logSink) writeFailed(l *sinkLog, err error, lines int) {
	l.failLines += lines
	l.failErr = err
	l.suppressed++
	s.reportFailures(l, false)
}

// reportFailures reports the failed writes of l not reported yet: when
// the last report is logReportEvery old, or now if final. s.mu is held.
func (s *logSink) reportFailures(l *sinkLog, final bool) {
	if l.suppressed == 0 {
		return
	}
	now := time.Now()
	if !final && !l.failedAt.IsZero() && now.Sub(l.failedAt) < logReportEvery {
		return
	}
	s.log().Error("cluster: log write failed", "log", l.name, "lines", l.failLines,
		"error", l.failErr.Error(), "suppressed", l.suppressed-1)
	l.failedAt, l.failLines, l.suppressed = now, 0, 0
}

// reportDropped reports the records wr's worker dropped since the last
// report: at most once per logReportEvery, and what is left when the
// worker is gone.
func (s *logSink) reportDropped(wr *workerRing, final bool) {
	d := wr.ring.Dropped()
	if d == wr.reported {
		return
	}
	now := time.Now()
	if !final && !wr.reportedAt.IsZero() && now.Sub(wr.reportedAt) < logReportEvery {
		return
	}
	s.log().Warn("cluster: log records dropped by a worker", "log", wr.log.name, "worker", wr.worker,
		"pid", wr.pid, "dropped", d-wr.reported, "total", d)
	wr.reported, wr.reportedAt = d, now
}

// prepare creates p's rings, one per log.
func (s *logSink) prepare(p *proc) ([]inheritedFile, error) {
	h := &sinkProc{s: s}
	p.attach(h) // first, so that abandon releases what was made
	files := []inheritedFile{{logBellName, s.bellW}}
	for _, l := range s.logs {
		f, r, err := shmring.Create("log-"+l.name, s.size)
		if err != nil {
			return nil, fmt.Errorf("cluster: log %q: %w", l.name, err)
		}
		h.rings = append(h.rings, &workerRing{log: l, ring: r, rd: shmring.NewReader(r), memfd: f, worker: p.id})
		files = append(files, inheritedFile{logFilePrefix + l.name, f})
	}
	return files, nil
}

// close drains what is left, once every worker is gone, reports the
// failed writes not reported yet and closes the files. It is safe to call
// more than once.
func (s *logSink) close() { s.closeOnce.Do(s.doClose) }

func (s *logSink) doClose() {
	close(s.stop)
	_ = s.bellR.Close() // ends listen
	s.wg.Wait()
	s.mu.Lock()
	for wr := range s.rings {
		s.drain(wr, true)
		_ = wr.ring.Close()
		delete(s.rings, wr)
	}
	for _, l := range s.logs {
		s.reportFailures(l, true)
	}
	s.mu.Unlock()
	_ = s.bellW.Close()
	s.closeFiles()
}

func (s *logSink) closeFiles() {
	for _, l := range s.logs {
		if err := l.file.Close(); err != nil {
			s.log().Error("cluster: closing a log file", "log", l.name, "error", err.Error())
		}
	}
}

// sinkProc is the log sink's state for one worker process.
type sinkProc struct {
	s     *logSink
	rings []*workerRing
}

// started closes the supervisor's descriptors of the rings (the mappings
// stay) and lets run drain them.
func (h *sinkProc) started(p *proc) {
	pid := 0
	if p.cmd.Process != nil {
		pid = p.cmd.Process.Pid
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	for _, wr := range h.rings {
		_ = wr.memfd.Close()
		wr.memfd = nil
		wr.pid = pid
		h.s.rings[wr] = struct{}{} // a process that failed to start is abandoned next
	}
}

// exited drains what the worker left, skipping what it was still
// copying, and unmaps its rings.
func (h *sinkProc) exited(*proc) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	for _, wr := range h.rings {
		if _, ok := h.s.rings[wr]; ok {
			h.s.drain(wr, true)
			delete(h.s.rings, wr)
		}
		if wr.memfd != nil {
			_ = wr.memfd.Close()
		}
		_ = wr.ring.Close()
	}
}

// ringWriter is what LogWriter returns in a worker.
type ringWriter struct{ w *shmring.Writer }

// Write copies p into the ring as one record.
func (w *ringWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrLogDropped, err)
	}
	return n, nil
}

// workerLogs maps, once, the rings this worker inherited, by log name;
// nil in a process that is not a worker.
var workerLogs = sync.OnceValues(func() (map[string]io.Writer, error) {
	inh, err := inherited()
	if err != nil || inh == nil {
		return nil, err
	}
	bell := inh.file(logBellName)
	logs := map[string]io.Writer{}
	for name, f := range inh.files {
		log, ok := strings.CutPrefix(name, logFilePrefix)
		if !ok {
			continue
		}
		if bell == nil {
			return nil, fmt.Errorf("cluster: worker: log %q without the %s descriptor", log, logBellName)
		}
		r, err := shmring.Map(f)
		if err != nil {
			return nil, fmt.Errorf("cluster: worker: log %q: %w", log, err)
		}
		_ = f.Close() // the mapping stays
		logs[log] = &ringWriter{w: shmring.NewWriter(r, bell, logWait)}
	}
	return logs, nil
})

// logWriter is LogWriter on Unix.
func logWriter(name string) (io.Writer, bool) {
	logs, err := workerLogs()
	if err != nil {
		return nil, false // and Run or Serve return err
	}
	w, ok := logs[name]
	return w, ok
}

// checkWorkerLogs returns the error of mapping the inherited rings, for
// runWorker: a worker that cannot write its logs does not start.
func checkWorkerLogs() error {
	_, err := workerLogs()
	return err
}

var _ part = (*logSink)(nil)
