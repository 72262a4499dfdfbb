package accesslog

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
	f, err := OpenFile(path, WithMaxSize(10), WithCompress(false))
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
	f, err := openFile(path, clock.now, WithRotateEvery(24*time.Hour), WithCompress(false))
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
		opts  []FileOption
		step  time.Duration
		want  int // backups left
		plain bool
	}{
		{"max backups", []FileOption{WithMaxBackups(3)}, time.Millisecond, 3, false},
		{"max age", []FileOption{WithMaxAge(3*time.Hour + 30*time.Minute)}, time.Hour, 4, false},
		{"both, count wins", []FileOption{WithMaxBackups(2), WithMaxAge(24 * time.Hour)}, time.Hour, 2, false},
		{"both, age wins", []FileOption{WithMaxBackups(5), WithMaxAge(90 * time.Minute)}, time.Hour, 2, false},
		{"uncompressed", []FileOption{WithMaxBackups(4), WithCompress(false)}, time.Millisecond, 4, true},
		{"keep all", nil, time.Millisecond, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.log")
			base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
			clock := &fakeClock{t: base}
			f, err := openFile(path, clock.now, append([]FileOption{WithMaxSize(10)}, tt.opts...)...)
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

	f, err := OpenFile(path)
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
		opts []FileOption
		want string
	}{
		{"empty path", "", nil, "accesslog: file path is empty"},
		{"negative size", filepath.Join(dir, "a.log"), []FileOption{WithMaxSize(-1)}, "accesslog: max size must be >= 0"},
		{"negative interval", filepath.Join(dir, "a.log"), []FileOption{WithRotateEvery(-time.Second)}, "accesslog: rotation interval must be >= 0"},
		{"negative backups", filepath.Join(dir, "a.log"), []FileOption{WithMaxBackups(-1)}, "accesslog: max backups must be >= 0"},
		{"negative age", filepath.Join(dir, "a.log"), []FileOption{WithMaxAge(-time.Hour)}, "accesslog: max age must be >= 0"},
		{"mode with type bits", filepath.Join(dir, "a.log"), []FileOption{WithFileMode(os.ModeDir | 0o600)}, "accesslog: file mode must be permission bits only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := OpenFile(tt.path, tt.opts...)
			assert.Nil(t, f)
			assert.EqualError(t, err, tt.want)
		})
	}
	t.Run("directory not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes anywhere")
		}
		ro := filepath.Join(dir, "ro")
		require.NoError(t, os.Mkdir(ro, 0o500))
		_, err := OpenFile(filepath.Join(ro, "a.log"))
		assert.ErrorIs(t, err, os.ErrPermission)
	})
}

func TestFileClosed(t *testing.T) {
	f, err := OpenFile(filepath.Join(t.TempDir(), "c.log"), WithFileMode(0o600))
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
	f, err := OpenFile("/dev/full", WithCompress(false), WithMaxSize(0))
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
	f, err := OpenFile(path)
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
		f, err := OpenFile(filepath.Join(dir, "closed.log"))
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
	f, err := OpenFile(path, WithMaxSize(4<<10))
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
	f, err := OpenFile(path, WithMaxSize(maxSize))
	require.NoError(t, err)
	bw := NewBufferedWriter(f, WithBufferSize(64<<10))
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
	f, err := openFile(path, clock.now, WithMaxSize(5), WithFileErrorLogger(logger))
	require.NoError(t, err)
	for range 3 {
		_, err := f.Write([]byte("1234\n"))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.Contains(t, out, "accesslog: log file maintenance failed")
	got, _ := readLog(t, path)
	assert.Equal(t, "1234\n1234\n1234\n", got, "a failed compression keeps the plain backup")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
