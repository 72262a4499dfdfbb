package logfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for File.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration // added after each reading
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// readLog returns the content of the live file and of every backup of the
// log at path, oldest first, decompressing the .gz ones, and the backup
// names.
func readLog(t *testing.T, path string) (content string, backups []string) {
	t.Helper()
	f := &File{path: path, prefix: strings.TrimSuffix(path, filepath.Ext(path)), ext: filepath.Ext(path)}
	list, err := f.backups()
	require.NoError(t, err)
	var all bytes.Buffer
	for _, b := range list {
		require.Falsef(t, b.plain != "" && b.gz != "", "backup %s is both compressed and not", b.plain)
		name := b.gz
		if name == "" {
			name = b.plain
		}
		backups = append(backups, filepath.Base(name))
		data := readMaybeGzip(t, name)
		require.Truef(t, len(data) == 0 || data[len(data)-1] == '\n', "backup %s ends mid-line", name)
		all.Write(data)
	}
	live, err := os.ReadFile(path)
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	all.Write(live)
	return all.String(), backups
}

func readMaybeGzip(t *testing.T, name string) []byte {
	t.Helper()
	fh, err := os.Open(name)
	require.NoError(t, err)
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(fh)
		require.NoErrorf(t, err, "archive %s", name)
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(r)
	require.NoErrorf(t, err, "archive %s decompresses", name)
	return data
}

func lines(n, width int) []string {
	out := make([]string, n)
	for i := range out {
		s := fmt.Sprintf("line %d ", i)
		out[i] = s + strings.Repeat("x", width-len(s)-1) + "\n"
	}
	return out
}

func TestFileRotatesBySizeAndCompresses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), step: time.Millisecond}
	f, err := openFile(path, clock.now, WithMaxSize(100))
	require.NoError(t, err)
	want := lines(35, 10)
	for _, l := range want {
		n, err := f.Write([]byte(l))
		require.NoError(t, err)
		require.Equal(t, len(l), n)
	}
	require.NoError(t, f.Close())

	got, backups := readLog(t, path)
	assert.Equal(t, strings.Join(want, ""), got, "every line once, in order")
	assert.Len(t, backups, 3, "100-byte files of 10-byte lines: 3 rotations for 35 lines")
	for _, b := range backups {
		assert.Regexp(t, `^access-2024-05-01T12-00-00\.\d{3}\.log\.gz$`, b)
	}
	live, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, strings.Join(want[30:], ""), string(live))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "default mode")
}

func TestFileLineLargerThanMaxSizeIsNotSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.log")
	f, err := Open(path, WithMaxSize(10), WithCompression(false))
	require.NoError(t, err)
	for _, l := range []string{"short\n", strings.Repeat("L", 30) + "\n", "after\n"} {
		_, err := f.Write([]byte(l))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	got, backups := readLog(t, path)
	assert.Equal(t, "short\n"+strings.Repeat("L", 30)+"\nafter\n", got)
	assert.Len(t, backups, 2)
}

func TestFileSameMillisecondRotationsKeepEveryBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fast.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} // frozen
	f, err := openFile(path, clock.now, WithMaxSize(10))
	require.NoError(t, err)
	want := lines(26, 10)
	for _, l := range want {
		_, err := f.Write([]byte(l))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	got, backups := readLog(t, path)
	assert.Equal(t, strings.Join(want, ""), got, "no backup overwrote another")
	require.Len(t, backups, 25)
	assert.Equal(t, "fast-2024-05-01T12-00-00.000.log.gz", backups[0])
	assert.Equal(t, "fast-2024-05-01T12-00-00.000-1.log.gz", backups[1])
	assert.Equal(t, "fast-2024-05-01T12-00-00.000-24.log.gz", backups[24])
}

func TestFileClockSteppingBackKeepsOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ntp.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	f, err := openFile(path, clock.now, WithMaxSize(10), WithMaxBackups(2))
	require.NoError(t, err)
	want := lines(4, 10)
	for i, l := range want {
		if i == 2 {
			clock.set(time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)) // an hour back
		}
		_, err := f.Write([]byte(l))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	got, backups := readLog(t, path)
	assert.Equal(t, strings.Join(want[1:], ""), got, "pruning removed the oldest backup, not the newest")
	assert.Equal(t, []string{"ntp-2024-05-01T12-00-00.000-1.log.gz", "ntp-2024-05-01T12-00-00.000-2.log.gz"}, backups,
		"rotations after the step back continue the sequence of the newest name")
}

func TestNextBoundary(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	tests := []struct {
		name  string
		t     time.Time
		every time.Duration
		want  time.Time
	}{
		{"daily: next local midnight", time.Date(2024, 5, 1, 13, 30, 0, 0, berlin), 24 * time.Hour, time.Date(2024, 5, 2, 0, 0, 0, 0, berlin)},
		{"daily at midnight: the next one", time.Date(2024, 5, 1, 0, 0, 0, 0, berlin), 24 * time.Hour, time.Date(2024, 5, 2, 0, 0, 0, 0, berlin)},
		{"daily across spring DST (23h day)", time.Date(2024, 3, 31, 1, 0, 0, 0, berlin), 24 * time.Hour, time.Date(2024, 4, 1, 0, 0, 0, 0, berlin)},
		{"hourly", time.Date(2024, 5, 1, 13, 30, 0, 0, berlin), time.Hour, time.Date(2024, 5, 1, 14, 0, 0, 0, berlin)},
		{"6h", time.Date(2024, 5, 1, 13, 30, 0, 0, berlin), 6 * time.Hour, time.Date(2024, 5, 1, 18, 0, 0, 0, berlin)},
		{"7h does not divide the day: midnight caps it", time.Date(2024, 5, 1, 22, 0, 0, 0, berlin), 7 * time.Hour, time.Date(2024, 5, 2, 0, 0, 0, 0, berlin)},
		{"weekly", time.Date(2024, 5, 1, 13, 30, 0, 0, berlin), 7 * 24 * time.Hour, time.Date(2024, 5, 8, 0, 0, 0, 0, berlin)},
		{"36h rounds down to a day", time.Date(2024, 5, 1, 13, 30, 0, 0, time.UTC), 36 * time.Hour, time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nextBoundary(tt.t, tt.every)
			assert.Truef(t, got.Equal(tt.want), "got %v, want %v", got, tt.want)
		})
	}
}

func TestFileRotatesEveryDayAtMidnight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daily.log")
	loc := time.FixedZone("UTC+2", 2*3600)
	clock := &fakeClock{t: time.Date(2024, 5, 1, 23, 58, 0, 0, loc)}
	f, err := openFile(path, clock.now, WithRotateEvery(24*time.Hour), WithMaxSize(0))
	require.NoError(t, err)
	write := func(s string) {
		t.Helper()
		_, err := f.Write([]byte(s))
		require.NoError(t, err)
	}
	write("may 1, 23:58\n")
	clock.set(time.Date(2024, 5, 1, 23, 59, 59, 0, loc))
	write("may 1, 23:59:59\n")
	clock.set(time.Date(2024, 5, 2, 0, 0, 1, 0, loc))
	write("may 2, 00:00:01\n")
	// Nothing is written on May 3: the next write, on May 4, rotates once.
	clock.set(time.Date(2024, 5, 4, 9, 0, 0, 0, loc))
	write("may 4\n")
	require.NoError(t, f.Rotate(), "rotate on demand")
	require.NoError(t, f.Rotate(), "rotating an empty file is a no-op")
	require.NoError(t, f.Close())

	_, backups := readLog(t, path)
	require.Len(t, backups, 3)
	assert.Equal(t, "may 1, 23:58\nmay 1, 23:59:59\n", string(readMaybeGzip(t, filepath.Join(filepath.Dir(path), backups[0]))))
	assert.Equal(t, "may 2, 00:00:01\n", string(readMaybeGzip(t, filepath.Join(filepath.Dir(path), backups[1]))))
	assert.Equal(t, "may 4\n", string(readMaybeGzip(t, filepath.Join(filepath.Dir(path), backups[2]))))
	assert.Equal(t, "daily-2024-05-01T22-00-01.000.log.gz", backups[0], "named with the UTC rotation time")
}

func TestFileContinuesAnOldFileWithTimeRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.log")
	require.NoError(t, os.WriteFile(path, []byte("yesterday\n"), 0o640))
	yesterday := time.Date(2024, 5, 1, 15, 0, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(path, yesterday, yesterday))
	clock := &fakeClock{t: time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)}
	f, err := openFile(path, clock.now, WithRotateEvery(24*time.Hour), WithCompression(false))
	require.NoError(t, err)
	_, err = f.Write([]byte("today\n"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, backups := readLog(t, path)
	require.Len(t, backups, 1, "yesterday's file is rotated at the first write of today")
	live, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "today\n", string(live))
}

func TestFileRetention(t *testing.T) {
	// Ten 10-byte lines into a 10-byte file: write i (from 1) rotates the
	// file holding line i-1, at base + i*step.
	tests := []struct {
		name  string
		opts  []Option
		step  time.Duration
		want  int // backups left
		plain bool
	}{
		{"max backups", []Option{WithMaxBackups(3)}, time.Millisecond, 3, false},
		{"max age", []Option{WithMaxAge(3*time.Hour + 30*time.Minute)}, time.Hour, 4, false},
		{"both, count wins", []Option{WithMaxBackups(2), WithMaxAge(24 * time.Hour)}, time.Hour, 2, false},
		{"both, age wins", []Option{WithMaxBackups(5), WithMaxAge(90 * time.Minute)}, time.Hour, 2, false},
		{"uncompressed", []Option{WithMaxBackups(4), WithCompression(false)}, time.Millisecond, 4, true},
		{"keep all", nil, time.Millisecond, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.log")
			base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
			clock := &fakeClock{t: base}
			f, err := openFile(path, clock.now, append([]Option{WithMaxSize(10)}, tt.opts...)...)
			require.NoError(t, err)
			want := lines(10, 10)
			for i, l := range want {
				clock.set(base.Add(time.Duration(i) * tt.step))
				_, err := f.Write([]byte(l))
				require.NoError(t, err)
			}
			require.NoError(t, f.Close())
			got, backups := readLog(t, path)
			require.Len(t, backups, tt.want)
			assert.Equal(t, strings.Join(want[len(want)-tt.want-1:], ""), got, "the newest backups are kept")
			for _, b := range backups {
				assert.Equal(t, !tt.plain, strings.HasSuffix(b, ".gz"), "backup %s", b)
			}
		})
	}
}

func TestFileFinishesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	plain := filepath.Join(dir, "app-2024-05-01T00-00-00.000.log")
	require.NoError(t, os.WriteFile(plain, []byte("rotated, never compressed\n"), 0o640))
	require.NoError(t, os.WriteFile(plain+".gz.tmp", []byte("half a gzip"), 0o640))
	orphan := filepath.Join(dir, "app-2024-04-30T00-00-00.000.log.gz.tmp")
	require.NoError(t, os.WriteFile(orphan, []byte("half a gzip"), 0o640))
	unrelated := filepath.Join(dir, "app-notes.txt")
	require.NoError(t, os.WriteFile(unrelated, []byte("keep me"), 0o640))

	f, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	got, backups := readLog(t, path)
	assert.Equal(t, []string{"app-2024-05-01T00-00-00.000.log.gz"}, backups)
	assert.Equal(t, "rotated, never compressed\n", got)
	for _, gone := range []string{plain, plain + ".gz.tmp", orphan} {
		assert.NoFileExists(t, gone)
	}
	assert.FileExists(t, unrelated)
}

func TestFileOptionErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts []Option
		want string
	}{
		{"empty path", "", nil, "logfile: file path is empty"},
		{"negative size", filepath.Join(dir, "a.log"), []Option{WithMaxSize(-1)}, "logfile: max size must be >= 0"},
		{"negative interval", filepath.Join(dir, "a.log"), []Option{WithRotateEvery(-time.Second)}, "logfile: rotation interval must be >= 0"},
		{"negative backups", filepath.Join(dir, "a.log"), []Option{WithMaxBackups(-1)}, "logfile: max backups must be >= 0"},
		{"negative age", filepath.Join(dir, "a.log"), []Option{WithMaxAge(-time.Hour)}, "logfile: max age must be >= 0"},
		{"mode with type bits", filepath.Join(dir, "a.log"), []Option{WithFileMode(os.ModeDir | 0o600)}, "logfile: file mode must be permission bits only"},
		{"mode the owner cannot write", filepath.Join(dir, "a.log"), []Option{WithFileMode(0o440)}, "logfile: file mode 0440 does not let the owner write"},
		{"rotation in nanoseconds", filepath.Join(dir, "a.log"), []Option{WithRotateEvery(24)}, "logfile: rotation interval 24ns is shorter than 1m0s"},
		{"rotation that does not divide a day", filepath.Join(dir, "a.log"), []Option{WithRotateEvery(7 * time.Hour)}, "logfile: rotation interval 7h0m0s does not divide a day"},
		{"rotation in part days", filepath.Join(dir, "a.log"), []Option{WithRotateEvery(36 * time.Hour)}, "logfile: rotation interval 36h0m0s is not a whole number of days"},
		{"nil option", filepath.Join(dir, "a.log"), []Option{WithMaxSize(10), nil}, "logfile: nil option"},
		{"nil logger", filepath.Join(dir, "a.log"), []Option{WithLogger(nil)}, "logfile: logger is nil"},
		{"an option of NewBufferedWriter", filepath.Join(dir, "a.log"), []Option{WithBufferSize(1 << 10)}, "logfile: WithBufferSize is an option of NewBufferedWriter, not of Open"},
		{"drop is an option of NewBufferedWriter", filepath.Join(dir, "a.log"), []Option{WithDropWhenFull(true)}, "logfile: WithDropWhenFull is an option of NewBufferedWriter, not of Open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.path, tt.opts...)
			assert.Nil(t, f)
			assert.EqualError(t, err, tt.want)
		})
	}
	assert.NoFileExists(t, filepath.Join(dir, "a.log"), "options are checked before anything is made")
	t.Run("directory not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes anywhere")
		}
		ro := filepath.Join(dir, "ro")
		require.NoError(t, os.Mkdir(ro, 0o500))
		_, err := Open(filepath.Join(ro, "a.log"))
		assert.ErrorIs(t, err, os.ErrPermission)
	})
}

func TestFileClosed(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "c.log"), WithFileMode(0o600))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { assert.NoError(t, f.Close(), "concurrent Close") })
	}
	wg.Wait()
	require.NoError(t, f.Close(), "Close is idempotent")
	_, err = f.Write([]byte("x\n"))
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, f.Rotate(), ErrClosed)
	assert.ErrorIs(t, f.Reopen(), ErrClosed)
}

func TestFileWriteErrorOnFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f, err := Open("/dev/full", WithCompression(false), WithMaxSize(0))
	require.NoError(t, err)
	defer f.Close()
	n, err := f.Write([]byte("a line\n"))
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.Zero(t, n, "nothing of the line counts as written")
}

func TestFileReopenOnSignal(t *testing.T) {
	// A guard keeps a SIGHUP that arrives before ReopenOnSignal registers
	// from killing the test binary.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	path := filepath.Join(dir, "hup.log")
	f, err := Open(path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.reopenOnSignal(ctx, func() { close(ready) })
	}()
	<-ready

	_, err = f.Write([]byte("before logrotate\n"))
	require.NoError(t, err)
	// logrotate: move the file away, then signal the process.
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	// Reopen runs in the signal goroutine; wait until path exists again.
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(path) {
		require.True(t, time.Now().Before(deadline), "the file was not reopened after SIGHUP")
		time.Sleep(5 * time.Millisecond)
	}
	_, err = f.Write([]byte("after logrotate\n"))
	require.NoError(t, err)

	cancel()
	<-done
	require.NoError(t, f.Close())
	moved, err := os.ReadFile(path + ".1")
	require.NoError(t, err)
	assert.Equal(t, "before logrotate\n", string(moved))
	live, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "after logrotate\n", string(live))

	t.Run("returns when the file is closed", func(t *testing.T) {
		f, err := Open(filepath.Join(dir, "closed.log"))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.ReopenOnSignal(context.Background(), syscall.SIGUSR1)
		}()
		require.NoError(t, f.Close())
		<-done
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestFileConcurrentWritersAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conc.log")
	f, err := Open(path, WithMaxSize(4<<10))
	require.NoError(t, err)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := fmt.Fprintf(f, "w%d %05d %s\n", g, i, strings.Repeat("z", 20))
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, f.Close())
	got, backups := readLog(t, path)
	assert.GreaterOrEqual(t, len(backups), 20)
	checkLines(t, got, writers, each)
}

// checkLines checks that content holds every line "w<g> <i> …" of writers
// × each exactly once, whole.
func checkLines(t *testing.T, content string, writers, each int) {
	t.Helper()
	seen := make([][]uint8, writers)
	for g := range seen {
		seen[g] = make([]uint8, each)
	}
	sc := bufio.NewScanner(strings.NewReader(content))
	bad := 0
	for sc.Scan() {
		g, i, ok := parseLine(sc.Text())
		if !ok || g >= writers || i >= each {
			bad++
			if bad < 5 {
				t.Errorf("torn or foreign line %q", sc.Text())
			}
			continue
		}
		seen[g][i]++
	}
	require.NoError(t, sc.Err())
	require.Zero(t, bad, "torn lines")
	missing, dup := 0, 0
	for g := range seen {
		for i, n := range seen[g] {
			switch {
			case n == 0:
				missing++
				if missing < 5 {
					t.Errorf("line w%d %d missing", g, i)
				}
			case n > 1:
				dup++
			}
		}
	}
	assert.Zero(t, missing, "lines lost")
	assert.Zero(t, dup, "lines written twice")
}

// parseLine parses "w<g> <i> <20 bytes of padding>" (fmt.Sscanf is too
// slow for a million lines under -race).
func parseLine(l string) (g, i int, ok bool) {
	fields := strings.Split(l, " ")
	if len(fields) != 3 || len(fields[0]) < 2 || fields[0][0] != 'w' || len(fields[2]) != 20 {
		return 0, 0, false
	}
	g, err1 := strconv.Atoi(fields[0][1:])
	i, err2 := strconv.Atoi(fields[1])
	return g, i, err1 == nil && err2 == nil && g >= 0 && i >= 0
}

// TestNoLineLostOrTorn is the acceptance test: 8 goroutines write
// 1,000,000 lines through a BufferedWriter into a File that rotates more
// than 20 times; every line appears exactly once, whole, across the live
// file and the decompressed archives.
func TestNoLineLostOrTorn(t *testing.T) {
	const writers = 8
	total := 1_000_000
	if testing.Short() {
		total = 100_000
	}
	each := total / writers
	const lineLen = len("w0 0000000 ") + 20 + 1
	maxSize := int64(total*lineLen) / 25 // about 25 rotations

	path := filepath.Join(t.TempDir(), "big.log")
	f, err := Open(path, WithMaxSize(maxSize))
	require.NoError(t, err)
	bw := newBuffered(t, f, WithBufferSize(64<<10))
	pad := strings.Repeat("p", 20)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			buf := make([]byte, 0, lineLen)
			for i := range each {
				buf = append(strconv.AppendInt(append(buf[:0], 'w'), int64(g), 10), ' ')
				num := strconv.Itoa(i)
				buf = append(append(append(buf, "0000000"[len(num):]...), num...), ' ')
				buf = append(append(buf, pad...), '\n')
				if _, err := bw.Write(buf); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("written in %v", time.Since(start))
	require.NoError(t, bw.Close())
	require.NoError(t, f.Close())
	t.Logf("closed in %v", time.Since(start))
	assert.Zero(t, bw.Dropped())

	content, backups := readLog(t, path)
	t.Logf("read in %v", time.Since(start))
	assert.GreaterOrEqual(t, len(backups), 20, "rotations")
	for _, b := range backups {
		assert.True(t, strings.HasSuffix(b, ".gz"), "backup %s compressed", b)
	}
	checkLines(t, content, writers, each)
}

func TestFileErrorLoggerGetsMaintenanceFailures(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	dir := t.TempDir()
	path := filepath.Join(dir, "m.log")
	// A directory where the compressed file should go makes compression
	// fail.
	clock := &fakeClock{t: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "m-2024-05-01T00-00-00.000.log.gz.tmp"), 0o750))
	f, err := openFile(path, clock.now, WithMaxSize(5), WithLogger(logger))
	require.NoError(t, err)
	for range 3 {
		_, err := f.Write([]byte("1234\n"))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.Contains(t, out, "logfile: log file maintenance failed")
	got, _ := readLog(t, path)
	assert.Equal(t, "1234\n1234\n1234\n", got, "a failed compression keeps the plain backup")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// lockedBuffer is a bytes.Buffer for an error logger that the File's write
// path and its background goroutine both write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lineWidth is the length of a numbered line.
const lineWidth = 50

// numbered returns line i of a test log, lineWidth bytes.
func numbered(i int) []byte {
	s := fmt.Sprintf("n %06d ", i)
	return []byte(s + strings.Repeat("x", lineWidth-len(s)-1) + "\n")
}

// numbersIn returns the numbers of the numbered lines of content, in
// order, and fails on any other line.
func numbersIn(t *testing.T, content string) []int {
	t.Helper()
	var out []int
	for l := range strings.Lines(content) {
		var i int
		if _, err := fmt.Sscanf(l, "n %06d ", &i); err != nil || len(l) != lineWidth {
			t.Fatalf("foreign or torn line %q", l)
		}
		out = append(out, i)
	}
	return out
}

// numbers returns from, from+1, …, to-1.
func numbers(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// assertNumbers checks that got is from, from+1, …, to-1 and names the
// first difference rather than printing thousands of numbers.
func assertNumbers(t *testing.T, from, to int, got []int, msg string) {
	t.Helper()
	if slices.Equal(got, numbers(from, to)) {
		return
	}
	i := 0
	for i < len(got) && i < to-from && got[i] == from+i {
		i++
	}
	switch {
	case i < len(got) && i < to-from:
		t.Errorf("%s: line %d is number %d, want %d (want %d..%d, got %d lines)", msg, i, got[i], from+i, from, to-1, len(got))
	default:
		t.Errorf("%s: want %d..%d (%d lines), got %d lines, the first %d as wanted", msg, from, to-1, to-from, len(got), i)
	}
}

func perm(t *testing.T, name string) os.FileMode {
	t.Helper()
	st, err := os.Stat(name)
	require.NoError(t, err)
	return st.Mode() & (os.ModePerm | os.ModeSetgid)
}

// TestFileSurvivesDeletion removes the live file or its directory under a
// File and writes 10,000 lines into it. The File notices at its next check
// (the clock is frozen here, so at the next rotation or check window),
// opens the path again, making the directory again with its mode, and
// every line written after that is in the file; the lines written into the
// deleted file before are counted in Dropped and reported. Size rotation
// goes on for the file written.
func TestFileSurvivesDeletion(t *testing.T) {
	const dirMode = 0o751 | os.ModeSetgid
	tests := []struct {
		name    string
		remove  func(t *testing.T, dir, path string)
		dirMode os.FileMode // afterwards
	}{
		{"live file removed", func(t *testing.T, _, path string) {
			require.NoError(t, os.Remove(path))
		}, dirMode},
		{"directory removed", func(t *testing.T, dir, _ string) {
			require.NoError(t, os.RemoveAll(dir))
		}, dirMode},
		{"directory removed and made again by someone else", func(t *testing.T, dir, _ string) {
			require.NoError(t, os.RemoveAll(dir))
			require.NoError(t, os.Mkdir(dir, 0o700))
		}, 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Chmod(dir, dirMode))
			path := filepath.Join(dir, "access.log")
			var errs lockedBuffer
			// Frozen: no check falls due by time.
			clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
			const maxSize = 64 << 10
			f, err := openFile(path, clock.now, WithMaxSize(maxSize), WithFileMode(0o600),
				WithLogger(slog.New(slog.NewTextHandler(&errs, nil))))
			require.NoError(t, err)

			tt.remove(t, dir, path)
			const total = 10_000
			for i := range total {
				_, err := f.Write(numbered(i))
				require.NoError(t, err, "write %d", i)
			}
			dropped := int(f.Dropped())
			require.NoError(t, f.Close())
			t.Logf("dropped %d of %d writes", dropped, total)

			content, backups := readLog(t, path)
			assert.Positive(t, dropped, "a deletion is noticed at the next check, not at once")
			assert.LessOrEqual(t, dropped*lineWidth, checkBytes+lineWidth, "… which comes within one check window")
			assertNumbers(t, dropped, total, numbersIn(t, content), "every line written after the File noticed is in the file, once, in order")
			assert.Contains(t, errs.String(), "deleted while open", "the loss is reported")
			assert.Contains(t, errs.String(), fmt.Sprintf("writes=%d", dropped), "with the count")
			require.GreaterOrEqual(t, len(backups), 5, "size rotation goes on after the reopen")
			for _, b := range append(backups, filepath.Base(path)) {
				assert.LessOrEqual(t, len(readMaybeGzip(t, filepath.Join(dir, b))), maxSize, "%s within the size limit", b)
			}
			assert.Equal(t, os.FileMode(0o600), perm(t, path), "file mode of the recreated file")
			assert.Equal(t, tt.dirMode, perm(t, dir), "directory mode")
		})
	}
}

// TestFileDirectoryCannotBeMadeAgain puts a regular file where the log
// directory was: the writes that went into the deleted file before the File
// noticed are counted in Dropped, every later one returns an error until
// the directory can be made again, and from then on every line lands.
func TestFileDirectoryCannotBeMadeAgain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "access.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	f, err := openFile(path, clock.now, WithCompression(false), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, []byte("not a directory\n"), 0o600))

	const total = 5_000
	failed := 0
	for i := range total {
		if _, err := f.Write(numbered(i)); err != nil {
			if failed == 0 {
				assert.ErrorIs(t, err, syscall.ENOTDIR)
				assert.True(t, strings.HasPrefix(err.Error(), "logfile: "), "got %q", err)
			}
			failed++
		}
	}
	dropped := int(f.Dropped())
	assert.Positive(t, dropped, "writes into the deleted file before the File noticed")
	assert.Positive(t, failed, "writes after it noticed fail")
	assert.Equal(t, total, dropped+failed, "no write is lost silently: each is counted or failed")

	require.NoError(t, os.Remove(dir))
	for i := total; i < 2*total; i++ {
		_, err := f.Write(numbered(i))
		require.NoError(t, err, "write %d after the way was free again", i)
	}
	require.NoError(t, f.Close())
	content, _ := readLog(t, path)
	assertNumbers(t, total, 2*total, numbersIn(t, content), "every line from the first write after the blocker went")
	assert.EqualValues(t, dropped, f.Dropped(), "nothing dropped after")
}

// TestFileFollowsAMovedOrReplacedFile moves the file away as logrotate
// does, without signalling the process: the lines go on into the moved
// file until the File notices, then into the file at the path, appended to
// what someone else put there. Nothing is dropped.
func TestFileFollowsAMovedOrReplacedFile(t *testing.T) {
	tests := []struct {
		name    string
		foreign string // what logrotate's create puts at path; "" for none
	}{
		{"moved (logrotate nocreate)", ""},
		{"moved and created anew (logrotate create)", "# created by logrotate\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
			f, err := openFile(path, clock.now, WithCompression(false))
			require.NoError(t, err)
			const before, total = 100, 10_000
			for i := range before {
				_, err := f.Write(numbered(i))
				require.NoError(t, err)
			}
			require.NoError(t, os.Rename(path, path+".1"))
			if tt.foreign != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.foreign), 0o600))
				require.NoError(t, os.Chmod(path, 0o644))
			}
			for i := before; i < total; i++ {
				_, err := f.Write(numbered(i))
				require.NoError(t, err)
			}
			require.NoError(t, f.Close())

			moved, err := os.ReadFile(path + ".1")
			require.NoError(t, err)
			live, err := os.ReadFile(path)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(live), tt.foreign), "someone else's content is kept")
			inMoved := numbersIn(t, string(moved))
			got := append(inMoved, numbersIn(t, strings.TrimPrefix(string(live), tt.foreign))...)
			assertNumbers(t, 0, total, got, "every line once, in order")
			assert.Greater(t, len(inMoved), before, "lines after the move went into the moved file until the File noticed")
			assert.Zero(t, f.Dropped())
			if tt.foreign != "" {
				assert.Equal(t, os.FileMode(0o644), perm(t, path), "someone else's file keeps its mode")
			}
		})
	}
}

// TestFileKeepsAMovedFileWhilePathCannotBeOpened moves the file away and
// puts a directory at its path: the File goes on writing into the moved
// file (nothing is lost), does not rotate what is at the path (it is not
// its file), reports the failure, and goes back to the path once it can.
func TestFileKeepsAMovedFileWhilePathCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	var errs lockedBuffer
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	f, err := openFile(path, clock.now, WithMaxSize(64<<10), WithCompression(false),
		WithLogger(slog.New(slog.NewTextHandler(&errs, nil))))
	require.NoError(t, err)
	const before, during, total = 100, 10_000, 12_000
	for i := range before {
		_, err := f.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, os.Mkdir(path, 0o700))
	for i := before; i < during; i++ {
		_, err := f.Write(numbered(i))
		require.NoError(t, err, "write %d: the moved file takes it", i)
	}
	assert.DirExists(t, path, "what is at the path is not rotated away")
	backups, err := f.backups()
	require.NoError(t, err)
	assert.Empty(t, backups, "no rotation of a file that is not at the path")
	assert.Contains(t, errs.String(), "is a directory", "the failure to open the path is reported")

	require.NoError(t, os.Remove(path))
	for i := during; i < total; i++ {
		_, err := f.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	moved, err := os.ReadFile(path + ".1")
	require.NoError(t, err)
	content, _ := readLog(t, path)
	inMoved := numbersIn(t, string(moved))
	assert.Greater(t, len(inMoved), during, "the moved file took every line until the path could be opened")
	assertNumbers(t, 0, total, append(inMoved, numbersIn(t, content)...), "every line once, in order")
	assert.Zero(t, f.Dropped())
}

// TestFileRotateAndReopenAfterDeletion checks that Rotate and Reopen (the
// SIGHUP path) notice a deleted file like the write path does: no rename
// error, the writes into the deleted file counted, a new file at path.
func TestFileRotateAndReopenAfterDeletion(t *testing.T) {
	tests := []struct {
		name string
		act  func(*File) error
	}{
		{"Rotate", (*File).Rotate},
		{"Reopen", (*File).Reopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			f, err := Open(path, WithCompression(false), WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, err)
			for i := range 10 {
				_, err := f.Write(numbered(i))
				require.NoError(t, err)
			}
			require.NoError(t, os.Remove(path))
			require.NoError(t, tt.act(f))
			assert.EqualValues(t, 10, f.Dropped(), "the writes into the deleted file")
			require.FileExists(t, path)
			for i := 10; i < 20; i++ {
				_, err := f.Write(numbered(i))
				require.NoError(t, err)
			}
			require.NoError(t, f.Close())
			content, backups := readLog(t, path)
			assert.Empty(t, backups, "nothing to rotate: the new file was empty")
			assertNumbers(t, 10, 20, numbersIn(t, content), "lines in the file")
		})
	}
}

func TestFileCloseReportsWritesIntoADeletedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := Open(path, WithCompression(false), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	for i := range 5 {
		_, err := f.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, os.Remove(path))
	err = f.Close()
	assert.ErrorContains(t, err, "deleted while open")
	assert.EqualValues(t, 5, f.Dropped())
}

// TestFileNoticesADeletionWithinTheCheckInterval deletes the file while
// each write comes a check interval after the previous one: the File
// checks before every write then, and nothing is dropped.
func TestFileNoticesADeletionWithinTheCheckInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), step: checkInterval}
	f, err := openFile(path, clock.now, WithCompression(false))
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	for i := range 100 {
		_, err := f.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	content, _ := readLog(t, path)
	assertNumbers(t, 0, 100, numbersIn(t, content), "lines in the file")
	assert.Zero(t, f.Dropped())
}

// TestFileSizeFollowsATruncation truncates the file under the File, as
// logrotate's copytruncate does: size rotation counts what is in the file,
// so no small file is rotated early.
func TestFileSizeFollowsATruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	f, err := openFile(path, clock.now, WithMaxSize(20*lineWidth), WithCompression(false))
	require.NoError(t, err)
	for i := range 15 {
		_, err := f.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, os.Truncate(path, 0))
	for i := 15; i < 30; i++ {
		_, err := f.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	content, backups := readLog(t, path)
	assert.Empty(t, backups, "15 lines in a file of 20: no rotation")
	assertNumbers(t, 15, 30, numbersIn(t, content), "lines in the file")
}

// TestFileDeletedUnderConcurrentWriters deletes the file before 8
// goroutines write 10,000 lines: every line is either in the file, whole
// and once, or counted in Dropped.
func TestFileDeletedUnderConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conc.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} // frozen: no check by time
	f, err := openFile(path, clock.now, WithMaxSize(64<<10), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	const writers, each = 8, 1250
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := fmt.Fprintf(f, "w%d %05d %s\n", g, i, strings.Repeat("z", 20)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, f.Close())
	content, _ := readLog(t, path)
	seen := map[[2]int]bool{}
	for l := range strings.Lines(content) {
		g, i, ok := parseLine(strings.TrimSuffix(l, "\n"))
		require.Truef(t, ok && g < writers && i < each, "torn or foreign line %q", l)
		require.Falsef(t, seen[[2]int{g, i}], "line %q twice", l)
		seen[[2]int{g, i}] = true
	}
	assert.Positive(t, f.Dropped())
	assert.Equal(t, writers*each, len(seen)+int(f.Dropped()), "lines in the file + dropped = lines written")
}

// TestBufferedWriterOnAFileWhoseDirectoryIsGone checks the accounting of
// the two together: a batch the File could not write is counted by the
// BufferedWriter (in lines), one that went into the deleted file by the
// File (in writes, here one line each, as every line is flushed alone).
func TestBufferedWriterOnAFileWhoseDirectoryIsGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "access.log")
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.DiscardHandler)
	f, err := openFile(path, clock.now, WithCompression(false), WithLogger(quiet))
	require.NoError(t, err)
	bw := newBuffered(t, f, WithLogger(quiet))
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o600))
	const total = 2_000
	for i := range total {
		_, err := bw.Write(numbered(i))
		require.NoError(t, err, "BufferedWriter.Write does not wait for the file")
		_ = bw.Flush()
	}
	assert.Positive(t, bw.Dropped())
	assert.Positive(t, f.Dropped())
	assert.EqualValues(t, total, bw.Dropped()+f.Dropped(), "every line is counted by one of them")

	require.NoError(t, os.Remove(dir))
	for i := total; i < 2*total; i++ {
		_, err := bw.Write(numbered(i))
		require.NoError(t, err)
	}
	require.NoError(t, bw.Close())
	require.NoError(t, f.Close())
	content, _ := readLog(t, path)
	assertNumbers(t, total, 2*total, numbersIn(t, content), "lines in the file")
}
