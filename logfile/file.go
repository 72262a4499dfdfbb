package logfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/shipshape-go/shipshape/internal/errlog"
)

// ErrClosed is returned by writes to, and rotations of, a closed [File] or
// [BufferedWriter].
var ErrClosed = errors.New("logfile: closed")

// DefaultMaxSize is the size at which a [File] rotates unless
// [WithMaxSize] says otherwise.
const DefaultMaxSize = 100 << 20

// backupTime is the UTC time stamp in backup names, as lumberjack writes it.
const backupTime = "2006-01-02T15-04-05.000"

// A File checks that the file it writes is still the one at its path
// after checkBytes were written or checkInterval passed since the last
// check, whichever comes first, and before every rotation: one stat(2) per
// 64 KiB (about 500 access lines) instead of one per line, and at least
// once a second when lines are rarer than that. The interval is measured
// with the clock the File reads for time rotation anyway.
const (
	checkBytes    = 64 << 10
	checkInterval = time.Second
)

// errDeleted is reported when the file was deleted while it was written.
var errDeleted = errors.New("logfile: log file deleted while open")

type fileConfig struct {
	maxSize     int64
	rotateEvery time.Duration
	maxBackups  int
	maxAge      time.Duration
	compress    bool
	mode        os.FileMode
}

// minRotateEvery is the shortest rotation interval: a shorter one is
// taken for a mistake (WithRotateEvery(24) is 24ns).
const minRotateEvery = time.Minute

// WithMaxSize rotates the file before a write would take it past n bytes
// (default [DefaultMaxSize], 100 MiB; 0 turns size rotation off; negative
// is an error). A single write larger than n goes whole into a fresh file:
// lines are never split. An option of [Open].
func WithMaxSize(n int64) Option {
	return func(o *options) {
		o.set(forFile, "WithMaxSize", func() error {
			if n < 0 {
				return errors.New("logfile: max size must be >= 0")
			}
			o.file.maxSize = n
			return nil
		})
	}
}

// WithRotateEvery rotates the file at the first write after each boundary
// (default 0: no time rotation). d is either a whole number of days or
// divides a day and is at least a minute (1m, 15m, 1h, 6h, 12h); any other
// value is an error. Boundaries are local midnight and, for d under 24h,
// every d after it; for whole days, local midnight every d, counted from
// the day the file was started. So WithRotateEvery(24*time.Hour) rotates
// at the first write after each local midnight. Rotation is lazy, without
// a timer: a file nobody writes to is not rotated, and every line lands in
// the file of the period it was written in. An empty file is never
// rotated. An option of [Open].
func WithRotateEvery(d time.Duration) Option {
	return func(o *options) {
		o.set(forFile, "WithRotateEvery", func() error {
			const day = 24 * time.Hour
			switch {
			case d < 0:
				return errors.New("logfile: rotation interval must be >= 0")
			case d == 0:
			case d < minRotateEvery:
				return fmt.Errorf("logfile: rotation interval %v is shorter than %v", d, minRotateEvery)
			case d < day && day%d != 0:
				return fmt.Errorf("logfile: rotation interval %v does not divide a day", d)
			case d >= day && d%day != 0:
				return fmt.Errorf("logfile: rotation interval %v is not a whole number of days", d)
			}
			o.file.rotateEvery = d
			return nil
		})
	}
}

// WithMaxBackups keeps at most n rotated files, the newest (default 0:
// keep all; negative is an error). An option of [Open].
func WithMaxBackups(n int) Option {
	return func(o *options) {
		o.set(forFile, "WithMaxBackups", func() error {
			if n < 0 {
				return errors.New("logfile: max backups must be >= 0")
			}
			o.file.maxBackups = n
			return nil
		})
	}
}

// WithMaxAge deletes rotated files older than d, by the rotation time in
// their name (default 0: no age limit; negative is an error). An option of
// [Open].
func WithMaxAge(d time.Duration) Option {
	return func(o *options) {
		o.set(forFile, "WithMaxAge", func() error {
			if d < 0 {
				return errors.New("logfile: max age must be >= 0")
			}
			o.file.maxAge = d
			return nil
		})
	}
}

// WithCompression gzips rotated files in a background goroutine when on
// (the default). An option of [Open].
func WithCompression(on bool) Option {
	return func(o *options) {
		o.set(forFile, "WithCompression", func() error {
			o.file.compress = on
			return nil
		})
	}
}

// WithFileMode sets the permissions of new log files (default 0640, less
// the umask): access logs hold client addresses. m is permission bits
// only and lets the owner write (the File opens its path again after a
// rotation); anything else is an error. An option of [Open].
func WithFileMode(m os.FileMode) Option {
	return func(o *options) {
		o.set(forFile, "WithFileMode", func() error {
			switch {
			case m&^fs.ModePerm != 0:
				return errors.New("logfile: file mode must be permission bits only")
			case m&0o200 == 0:
				return fmt.Errorf("logfile: file mode %#o does not let the owner write", m)
			}
			o.file.mode = m
			return nil
		})
	}
}

// File is an append-only log file that rotates by size and time, gzips
// rotated files off the write path and prunes them by count and age. It is
// an io.WriteCloser, safe for concurrent use: each Write lands whole, in one
// file, so a writer that writes whole lines never sees them split or
// interleaved across a rotation.
//
// A File keeps writing to its path when the file is taken away from under
// it. It checks that the file it writes is still the one at the path every
// 64 KiB written or every second, whichever comes first, and before every
// rotation (one stat(2), not one per line); when it is not, the File opens
// the path again, making the directory again, with the mode it had, if it
// was removed too:
//
//   - File deleted (rm, rm -r of the directory, with or without the
//     directory made again): the lines written since the last check went
//     into the deleted file and are gone. They are counted in
//     [File.Dropped] and reported to the error logger; every line from the
//     check on is in the file at the path.
//   - File moved (logrotate without copytruncate, with or without create,
//     and without a postrotate signal): the lines written since the move are
//     in the moved file, the later ones in the file at the path. If someone
//     else put a file there (logrotate's create), the File appends to it
//     and leaves its mode and owner as they are: the file at the configured
//     path is the log. Nothing is lost or counted. While the path cannot be
//     opened, the File goes on writing into the moved file (it does not
//     rotate it: it is no longer at the path) and reports the failure.
//   - File truncated (copytruncate): the check takes the size from the
//     file, so that size rotation counts what is in it.
//   - Directory gone and not possible to make again (a file in its place, a
//     parent that cannot be written): the writes since the last check are
//     counted as for a deletion, and every later Write returns an error
//     (nothing is written, nothing counted) until the path can be opened,
//     which every Write tries: the first line after that lands in the file.
//
// Size limits hold for the file at the path: its size is taken from the
// file at every open and check, and a deleted file is noticed at the
// latest when it is due to rotate. [File.Rotate] and [File.Reopen] (the
// signal path) check and open the path the same way.
//
// Rotated files sit next to the file, named after it with the UTC rotation
// time, as lumberjack names them: access.log becomes
// access-2024-05-01T00-00-00.000.log, then access-2024-05-01T00-00-00.000.log.gz
// once compressed. Two rotations within one millisecond get a counter
// (access-2024-05-01T00-00-00.000-1.log) instead of overwriting each other.
//
// File replaces gopkg.in/natefinch/lumberjack.v2, which it would have
// wrapped: lumberjack's compression goroutine is never stopped (Close
// leaves it running), backups rotated within the same millisecond overwrite
// each other (lines are lost under a fast writer), and its sizes and ages
// are whole megabytes and days.
//
// # What a crash loses
//
// Nothing that Write returned for. A File keeps no buffer: each Write is
// one write(2) to the file, so once it returned, the line is in the
// kernel and survives the process being killed (kill -9, the OOM killer,
// an unrecovered panic). Only a crash of the machine before the kernel
// wrote its page cache back can lose lines: a File does not fsync. Behind
// a [BufferedWriter], what the BufferedWriter still holds is lost; see
// there. Backups left uncompressed by a crash are compressed when the file
// is next opened; a compression the crash interrupted starts again from
// the plain backup, which is removed only once its .gz is complete.
//
// Close waits for the background compression and pruning to finish.
//
// Use one File per path, in one process: rotation renames the file under
// the writers of this process only. Under cluster's supervisor, let the
// supervisor own the file (cluster.WithLog) and the workers write to it
// through cluster.LogWriter: one file for the whole service, and nothing
// lost when a worker is killed.
type File struct {
	path   string
	prefix string // path without extension, for backup names
	ext    string
	cfg    fileConfig
	errs   *errlog.Reporter
	losses *errlog.Reporter // apart, so that a failing compression cannot hide a loss
	now    func() time.Time

	// reports counts the goroutines that hand reports to the logger (see
	// WithLogger); Close waits for them.
	reports reportGroup

	dirMode fs.FileMode // of the directory, to make it again as it was
	dropped atomic.Int64

	// Counts read by the metrics (see WithMeterProvider); unobserve stops
	// that at Close.
	writes           atomic.Int64
	rotations        atomic.Int64
	compressFailures atomic.Int64
	unobserve        func()

	mu        sync.Mutex
	f         *os.File
	fi        os.FileInfo // of f, to recognise it at path
	size      int64
	checked   int64     // size at the last check that found f at path (or at its open)
	unchecked int64     // writes since then
	checkAt   time.Time // the next check is due then, or at checked+checkBytes
	astray    bool      // f is not at path, which could not be opened; f is still linked
	next      time.Time // time rotation boundary; zero without time rotation
	closed    bool
	lastTime  time.Time // of the newest backup: names only ever sort later
	lastSeq   int

	wake      chan struct{} // asks the mill to compress and prune
	stop      chan struct{} // closed by Close
	millDone  chan struct{} // closed when the mill returned; nil without a mill
	closeOnce sync.Once
}

// Open opens (creating it and its directory if needed) the log file at
// path for appending, with rotation as the options say. Close it to stop the
// background goroutine that compresses and prunes rotated files. Every
// invalid option (nil, out of range, or one of [NewBufferedWriter]) is an
// error.
func Open(path string, opts ...Option) (*File, error) {
	return openFile(path, time.Now, opts...)
}

func openFile(path string, now func() time.Time, opts ...Option) (*File, error) {
	o := options{target: forFile, file: fileConfig{maxSize: DefaultMaxSize, compress: true, mode: 0o640}}
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	cfg := o.file
	if path == "" {
		return nil, errors.New("logfile: file path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	ext := filepath.Ext(abs)
	f := &File{
		path:   abs,
		prefix: strings.TrimSuffix(abs, ext),
		ext:    ext,
		cfg:    cfg,
		now:    now,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	reports := newAsyncLogger(o.logger, &f.reports)
	f.errs = errlog.New(reports, "logfile: log file maintenance failed", 0)
	f.losses = errlog.New(reports, "logfile: log lines lost", 0)
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	f.dirMode = st.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky)
	if err := f.reopenLocked(now()); err != nil {
		return nil, err
	}
	if backups, err := f.backups(); err == nil && len(backups) > 0 {
		last := backups[len(backups)-1]
		f.lastTime, f.lastSeq = last.t, last.seq
	}
	if f.unobserve, err = observeFile(o.meter, f); err != nil {
		_ = f.f.Close()
		return nil, fmt.Errorf("logfile: WithMeterProvider: %w", err)
	}
	if cfg.compress || cfg.maxBackups > 0 || cfg.maxAge > 0 {
		f.millDone = make(chan struct{})
		f.wake <- struct{}{} // finish what a previous run left
		go f.mill()
	}
	return f, nil
}

// syncLocked makes sure, as far as it can, that f writes to the file at
// path: when that is not the file written (deleted, moved, replaced) or
// there is none, it opens path again. It returns an error when it could
// not; f.f is then either nil or a file still linked elsewhere (f.astray).
func (f *File) syncLocked(now time.Time) error {
	if f.f != nil {
		st, err := os.Stat(f.path)
		if err == nil && os.SameFile(st, f.fi) {
			// Truncated under us (copytruncate): count what is there.
			f.size, f.astray = st.Size(), false
			f.checkedLocked(now)
			return nil
		}
	}
	return f.reopenLocked(now)
}

// reopenLocked opens path again and writes there from now on, closing the
// file written before. It is the one way a File changes files: after a
// check found the file gone, on Reopen, and after a rotation renamed it.
//
// When path cannot be opened, a previous file that still has a name (moved
// away by logrotate, or path cannot be reached just now) is kept, so that
// the lines go on landing somewhere, and path is tried again at the next
// check; one that was deleted is closed, and writes fail until path can be
// opened.
func (f *File) reopenLocked(now time.Time) error {
	fh, st, err := f.openPath()
	if err != nil {
		if f.f != nil && linked(f.f) {
			f.astray = true
			f.checkedLocked(now) // what was written so far is in the file kept
			return err
		}
		if f.f != nil {
			_ = f.retireLocked()
		}
		return err
	}
	if f.f != nil {
		_ = f.retireLocked()
	}
	f.f, f.fi, f.size, f.astray = fh, st, st.Size(), false
	f.checkedLocked(now)
	started := now
	if f.size > 0 && st.ModTime().Before(now) {
		started = st.ModTime().In(now.Location())
	}
	f.next = time.Time{}
	if f.cfg.rotateEvery > 0 {
		f.next = nextBoundary(started, f.cfg.rotateEvery)
	}
	return nil
}

// linked reports whether fh still has a name: it was not deleted. Where
// the link count is not known, it counts as linked.
func linked(fh *os.File) bool {
	st, err := fh.Stat()
	if err != nil {
		return false
	}
	n, ok := linkCount(st)
	return !ok || n > 0
}

// retireLocked closes the file written. If it has no link left (it was
// deleted), the writes since the last check went nowhere: they are counted
// as dropped, reported, and the error says so.
func (f *File) retireLocked() error {
	old := f.f
	f.f, f.astray = nil, false
	var lost error
	if f.unchecked > 0 && !linked(old) {
		f.dropped.Add(f.unchecked)
		lost = fmt.Errorf("%w: %d writes (%d bytes) since the last check are lost", errDeleted, f.unchecked, f.size-f.checked)
		f.losses.Report(context.Background(), errDeleted, slog.String("path", f.path),
			slog.Int64("writes", f.unchecked), slog.Int64("bytes", f.size-f.checked),
			slog.Int64("dropped", f.dropped.Load()))
	}
	f.unchecked = 0
	if err := old.Close(); err != nil && lost == nil {
		return fmt.Errorf("logfile: %w", err)
	}
	return lost
}

// checkedLocked starts a new check window at the current size.
func (f *File) checkedLocked(now time.Time) {
	f.checked, f.unchecked, f.checkAt = f.size, 0, now.Add(checkInterval)
}

func (f *File) checkDue(now time.Time) bool {
	return f.size-f.checked >= checkBytes || !now.Before(f.checkAt)
}

// openPath opens the file at path for appending, making its directory
// again if it was removed.
func (f *File) openPath() (*os.File, os.FileInfo, error) {
	const flags = os.O_WRONLY | os.O_APPEND | os.O_CREATE
	fh, err := os.OpenFile(f.path, flags, f.cfg.mode)
	if errors.Is(err, fs.ErrNotExist) {
		if err = f.mkdir(); err == nil {
			fh, err = os.OpenFile(f.path, flags, f.cfg.mode)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("logfile: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, fmt.Errorf("logfile: %w", err)
	}
	return fh, st, nil
}

// mkdir makes the directory of the file again, after it was removed, with
// the mode it had when the File was opened (not reduced by the umask),
// and its missing parents as Open makes them.
func (f *File) mkdir() error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return err
	}
	if err := os.Mkdir(dir, f.dirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made again by someone else: theirs as it is
		}
		return err
	}
	return os.Chmod(dir, f.dirMode)
}

// nextBoundary returns the first time rotation boundary after t.
func nextBoundary(t time.Time, every time.Duration) time.Time {
	y, m, d := t.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	const day = 24 * time.Hour
	if every >= day {
		return midnight.AddDate(0, 0, int(every/day))
	}
	next := midnight.Add((t.Sub(midnight)/every + 1) * every)
	if tomorrow := midnight.AddDate(0, 0, 1); next.After(tomorrow) {
		next = tomorrow
	}
	return next
}

// Write appends p to the file, rotating first when p would take it past the
// maximum size or a time boundary has passed. A failed write is undone
// (the file is truncated back), so that a full disk never leaves half a
// line; n is then 0. When there is no file to write to (its directory is
// gone and cannot be made again), Write tries to open the path and returns
// the error if it cannot; see [File] for what happens to the lines.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, ErrClosed
	}
	now := f.now()
	n := int64(len(p))
	if f.f == nil || f.checkDue(now) || (!f.astray && f.rotateDue(now, n)) {
		// No file, or a check is due, or a rotation, which must rename
		// the file written and not a stranger at path.
		if err := f.syncLocked(now); err != nil {
			if f.f == nil {
				return 0, err
			}
			// The file written was moved and path cannot be opened: the
			// line lands in the moved file; path is tried again at the
			// next check.
			f.errs.Report(context.Background(), err, slog.String("path", f.path))
		}
		if !f.astray && f.rotateDue(now, n) {
			if err := f.rotateLocked(now); err != nil {
				if f.f == nil {
					return 0, err
				}
				// A failed rename keeps the current file: the line is
				// not lost, and the rotation is tried again at the next
				// write.
				f.errs.Report(context.Background(), err, slog.String("path", f.path))
			}
		}
	}
	w, err := f.f.Write(p)
	if err != nil {
		if w > 0 && f.f.Truncate(f.size) == nil {
			w = 0
		}
		f.size += int64(w)
		return w, fmt.Errorf("logfile: %w", err)
	}
	f.size += int64(w)
	f.unchecked++
	f.writes.Add(1)
	return w, nil
}

// Dropped returns the number of writes that returned no error but did not
// reach the file at the path: those made into the file after it was
// deleted and before the File noticed (see [File]). They are counted when
// the File notices: at its next check, Rotate, Reopen or Close. The count
// is an upper bound, as a File cannot tell when within one check window
// the file was deleted. A Write that returns an error wrote nothing and is
// not counted here; the caller knows. A write is one line when a handler
// writes to the File directly, one batch of lines behind a
// [BufferedWriter] (whose own Dropped counts, in lines, the batches the
// File refused).
func (f *File) Dropped() int64 { return f.dropped.Load() }

func (f *File) rotateDue(now time.Time, n int64) bool {
	if !f.next.IsZero() && !now.Before(f.next) {
		if f.size > 0 {
			return true
		}
		f.next = nextBoundary(now, f.cfg.rotateEvery)
	}
	return f.cfg.maxSize > 0 && f.size > 0 && f.size+n > f.cfg.maxSize
}

// Rotate closes the file, renames it to a backup and opens a new one now,
// whatever its size and age; the backup is then compressed and pruned in
// the background. An empty file is not rotated. When the file is no longer
// at the path (see [File]), Rotate opens the path again instead of
// renaming.
func (f *File) Rotate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	now := f.now()
	if err := f.syncLocked(now); err != nil {
		return err // no file, or one that is not at path and not ours to rename
	}
	if f.size == 0 {
		return nil
	}
	return f.rotateLocked(now)
}

// rotateLocked renames the file written, which syncLocked has just found
// at path, to a backup and opens path again.
func (f *File) rotateLocked(now time.Time) error {
	name := f.backupName(now)
	if err := os.Rename(f.path, name); err != nil {
		// Keep writing to the current file; try again at the next write.
		f.next = time.Time{}
		if f.cfg.rotateEvery > 0 {
			f.next = nextBoundary(now, f.cfg.rotateEvery)
		}
		return fmt.Errorf("logfile: rotate: %w", err)
	}
	// The renamed file is not checked for links as reopenLocked would: a
	// mill pass still running may compress and remove it at any moment,
	// and what was written into it is in the backup.
	f.rotations.Add(1)
	old := f.f
	f.f = nil
	_ = old.Close() // the data was written; nothing is buffered
	err := f.reopenLocked(now)
	f.signalMill()
	return err
}

// backupName is the name of a backup rotated at now. Names sort in
// rotation order even when rotations share a millisecond or the clock steps
// back (the previous time is then reused with the next counter), so that
// pruning always removes the oldest; and no existing backup, compressed or
// not, is overwritten.
func (f *File) backupName(now time.Time) string {
	t, seq := now.UTC().Truncate(time.Millisecond), 0
	if !t.After(f.lastTime) {
		t, seq = f.lastTime, f.lastSeq+1
	}
	stamp := f.prefix + "-" + t.Format(backupTime)
	for ; ; seq++ {
		name := stamp + f.ext
		if seq > 0 {
			name = stamp + "-" + strconv.Itoa(seq) + f.ext
		}
		if exists(name) || exists(name+".gz") {
			continue
		}
		f.lastTime, f.lastSeq = t, seq
		return name
	}
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// Reopen closes the file and opens path again, without rotating: after an
// external tool (logrotate) renamed the file, the next lines go to a new
// file at path at once, not at the File's next check. It opens the path as
// that check does (see [File]). See [File.ReopenOnSignal].
func (f *File) Reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	return f.reopenLocked(f.now())
}

// ReopenOnSignal calls [File.Reopen] each time the process receives one of
// sigs (SIGHUP when none is given), for logrotate configurations that move
// the file and signal the process (postrotate kill -HUP). It blocks until ctx
// is done or the file is closed; run it in a goroutine:
//
//	go f.ReopenOnSignal(ctx)
//
// Reopen failures are reported to the file's error logger. Rotation by the
// File itself needs no signal. With cluster's supervisor, which uses SIGHUP
// for rolling restarts, the restart reopens the file anyway; pass another
// signal (syscall.SIGUSR1) to reopen without restarting.
func (f *File) ReopenOnSignal(ctx context.Context, sigs ...os.Signal) {
	f.reopenOnSignal(ctx, nil, sigs...)
}

func (f *File) reopenOnSignal(ctx context.Context, ready func(), sigs ...os.Signal) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGHUP}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	defer signal.Stop(ch)
	if ready != nil {
		ready()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.stop:
			return
		case <-ch:
			if err := f.Reopen(); err != nil {
				if errors.Is(err, ErrClosed) {
					return
				}
				f.errs.Report(ctx, err, slog.String("path", f.path))
			}
		}
	}
}

// Close closes the file and waits for the background compression and
// pruning, and for the reports under way (see [WithLogger]), to finish.
// Writes after Close return [ErrClosed]. It returns an
// error, too, when the file had been deleted and the writes since the last
// check were lost (they are counted in [File.Dropped]). It is safe to call
// more than once; later calls return nil.
func (f *File) Close() error {
	var err error
	f.closeOnce.Do(func() {
		// Reports under way may be writing into this File: let them land.
		f.reports.Wait()
		f.mu.Lock()
		f.closed = true
		if f.f != nil {
			err = f.retireLocked()
		}
		f.mu.Unlock()
		close(f.stop)
		if f.millDone != nil {
			<-f.millDone
		}
		f.reports.Wait()
		f.unobserve()
	})
	return err
}

func (f *File) signalMill() {
	if f.millDone == nil {
		return
	}
	select {
	case f.wake <- struct{}{}:
	default: // a pass is already due; it will see this backup
	}
}

// mill compresses and prunes backups, one pass per wake-up, and a last pass
// when the file is closed.
func (f *File) mill() {
	defer close(f.millDone)
	for {
		select {
		case <-f.wake:
			f.millOnce()
		case <-f.stop:
			f.millOnce()
			return
		}
	}
}

func (f *File) millOnce() {
	backups, err := f.backups()
	if err != nil {
		f.errs.Report(context.Background(), err, slog.String("path", f.path))
		return
	}
	if f.cfg.compress {
		for i := range backups {
			b := &backups[i]
			if b.plain == "" {
				continue
			}
			if err := compressFile(b.plain, f.cfg.mode); err != nil {
				f.compressFailures.Add(1)
				f.errs.Report(context.Background(), err, slog.String("path", b.plain))
				continue
			}
			b.gz, b.plain = b.plain+".gz", ""
		}
	}
	f.prune(backups)
}

// backup is one rotated file, compressed (gz), not yet (plain), or both
// after a crash between the two.
type backup struct {
	t     time.Time
	seq   int
	plain string
	gz    string
}

// backups lists the rotated files of f, oldest first, and removes
// temporary files of compressions a crash interrupted.
func (f *File) backups() ([]backup, error) {
	dir := filepath.Dir(f.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	base := filepath.Base(f.prefix) + "-"
	byName := map[string]*backup{}
	var list []*backup
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, base) {
			continue
		}
		rest := name[len(base):]
		tmp := strings.HasSuffix(rest, ".gz.tmp")
		gz := strings.HasSuffix(rest, ".gz")
		rest = strings.TrimSuffix(strings.TrimSuffix(rest, ".tmp"), ".gz")
		t, seq, ok := parseBackup(rest, f.ext)
		if !ok {
			continue
		}
		full := filepath.Join(dir, name)
		if tmp {
			// A compression that did not finish; it starts again from
			// the plain file, which is only removed after the rename.
			_ = os.Remove(full)
			continue
		}
		key := strings.TrimSuffix(full, ".gz")
		b := byName[key]
		if b == nil {
			b = &backup{t: t, seq: seq}
			byName[key] = b
			list = append(list, b)
		}
		if gz {
			b.gz = full
		} else {
			b.plain = full
		}
	}
	slices.SortFunc(list, func(a, b *backup) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	out := make([]backup, len(list))
	for i, b := range list {
		out[i] = *b
	}
	return out, nil
}

// parseBackup parses "<time>[-<seq>]<ext>".
func parseBackup(s, ext string) (time.Time, int, bool) {
	if len(s) < len(backupTime) || !strings.HasSuffix(s, ext) {
		return time.Time{}, 0, false
	}
	t, err := time.Parse(backupTime, s[:len(backupTime)])
	if err != nil {
		return time.Time{}, 0, false
	}
	rest := strings.TrimSuffix(s[len(backupTime):], ext)
	if rest == "" {
		return t, 0, true
	}
	if rest[0] != '-' {
		return time.Time{}, 0, false
	}
	seq, err := strconv.Atoi(rest[1:])
	if err != nil || seq < 1 {
		return time.Time{}, 0, false
	}
	return t, seq, true
}

// prune removes the backups beyond the count and age limits.
func (f *File) prune(backups []backup) {
	cutoff := time.Time{}
	if f.cfg.maxAge > 0 {
		cutoff = f.now().Add(-f.cfg.maxAge)
	}
	for i := len(backups) - 1; i >= 0; i-- {
		b := backups[i]
		newer := len(backups) - 1 - i
		old := f.cfg.maxBackups > 0 && newer >= f.cfg.maxBackups
		if !cutoff.IsZero() && b.t.Before(cutoff) {
			old = true
		}
		if !old {
			continue
		}
		for _, name := range []string{b.plain, b.gz} {
			if name == "" {
				continue
			}
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				f.errs.Report(context.Background(), fmt.Errorf("logfile: prune: %w", err), slog.String("path", name))
			}
		}
	}
}

// compressFile gzips src to src.gz (through a temporary file, synced before
// the rename) and removes src.
func compressFile(src string, mode os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	defer in.Close()
	if st, err := in.Stat(); err == nil {
		mode = st.Mode().Perm()
	}
	dst := src + ".gz"
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	gz := gzip.NewWriter(out)
	gz.Name = filepath.Base(src)
	if _, err = io.Copy(gz, in); err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	if err = gz.Close(); err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	if err = out.Sync(); err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	if err = out.Close(); err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("logfile: compress: %w", err)
	}
	return nil
}
