//go:build unix

package shmring

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair creates a ring and maps it a second time, as the writing process
// would: the writer and the reader share memory through two mappings, not
// through Go variables.
func pair(t testing.TB, size int) (*Ring, *Ring) {
	t.Helper()
	f, r, err := Create("test", size)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	w, err := Map(f)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	require.NoError(t, f.Close(), "the mappings outlive the file")
	return r, w
}

// drainAll drains until nothing is left to take and returns the bytes and
// the chunks they came in.
func drainAll(t testing.TB, rd *Reader) ([]byte, []string) {
	t.Helper()
	var out []byte
	var chunks []string
	for {
		n, err := rd.Drain(64<<10, func(c []byte) error {
			out = append(out, c...)
			chunks = append(chunks, string(c))
			return nil
		})
		require.NoError(t, err)
		if n == 0 {
			return out, chunks
		}
	}
}

func TestCreateAndMap(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr string
	}{
		{"smallest", MinSize, ""},
		{"64 KiB", 64 << 10, ""},
		{"too small", MinSize / 2, "shmring: size 2048, want a power of two between 4096 and 1073741824"},
		{"not a power of two", 3 * MinSize, "want a power of two"},
		{"too big", 2 * MaxSize, "want a power of two"},
		{"zero", 0, "want a power of two"},
		{"negative", -MinSize, "want a power of two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, r, err := Create("test", tt.size)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, f)
				assert.Nil(t, r)
				return
			}
			require.NoError(t, err)
			defer f.Close()
			defer r.Close()
			assert.Equal(t, tt.size, r.Size())
			m, err := Map(f)
			require.NoError(t, err)
			assert.Equal(t, tt.size, m.Size())
			require.NoError(t, m.Close())
			require.NoError(t, m.Close(), "Close twice")
		})
	}
}

func TestMapRefusesWhatIsNotARing(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte
		wantErr string
	}{
		{"empty file", nil, "is not that of a ring"},
		{"right size, no magic", make([]byte, headerSize+MinSize), "is not a ring"},
		{"size not a power of two", make([]byte, headerSize+MinSize+8), "is not that of a ring"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dir + "/" + strconv.Itoa(i)
			require.NoError(t, os.WriteFile(path, tt.content, 0o600))
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			defer f.Close()
			r, err := Map(f)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestMemfdIsSealed: the writing process cannot change the size of the
// ring under the reader's mapping.
func TestMemfdIsSealed(t *testing.T) {
	if !isLinux {
		t.Skip("memfd seals are Linux only")
	}
	f, r, err := Create("test", MinSize)
	require.NoError(t, err)
	defer f.Close()
	defer r.Close()
	assert.Error(t, f.Truncate(headerSize), "shrink")
	assert.Error(t, f.Truncate(2*(headerSize+MinSize)), "grow")
}

func TestRoundTripAcrossTheEnd(t *testing.T) {
	reader, writer := pair(t, MinSize)
	rd, w := NewReader(reader), NewWriter(writer, nil, 0)
	var want []byte
	// Lengths that walk the records around the end of the data area at
	// every offset; one in three has no newline of its own.
	for i := range 500 {
		rec := []byte(fmt.Sprintf("record %d %s\n", i, strings.Repeat("x", i%97)))
		if i%3 == 0 {
			rec = rec[:len(rec)-1]
		}
		n, err := w.Write(rec)
		require.NoError(t, err)
		require.Equal(t, len(rec), n, "what Write returns")
		want = append(want, rec...)
		if i%3 == 0 {
			want = append(want, '\n')
		}
		if i%7 == 0 {
			got, _ := drainAll(t, rd)
			require.Equal(t, string(want), string(got), "after record %d", i)
			want = want[:0]
		}
	}
	got, _ := drainAll(t, rd)
	assert.Equal(t, string(want), string(got))

	n, err := w.Write(nil)
	assert.NoError(t, err)
	assert.Zero(t, n, "an empty write is no record")
	assert.False(t, rd.Pending())
}

func TestChunks(t *testing.T) {
	line := func(c byte, n int) string { return strings.Repeat(string(c), n-1) + "\n" }
	tests := []struct {
		name    string
		skip    int      // bytes written and drained first: where the records start
		records []string // written, then drained with a limit of 100
		want    []string // the chunks
	}{
		{"all in one", 0, []string{line('a', 30), line('b', 30)}, []string{line('a', 30) + line('b', 30)}},
		{"cut at the last newline within the limit", 0,
			[]string{line('a', 60), line('b', 60), line('c', 20)}, []string{line('a', 60), line('b', 60) + line('c', 20)}},
		{"a record of two lines may be cut between them", 0,
			[]string{line('a', 80) + line('b', 80)}, []string{line('a', 80), line('b', 80)}},
		{"a line longer than the limit whole", 0,
			[]string{line('a', 250), line('b', 10)}, []string{line('a', 250), line('b', 10)}},
		{"at the end of the area on a line's end", MinSize - 50,
			[]string{line('a', 50), line('b', 50)}, []string{line('a', 50), line('b', 50)}},
		{"a line across the end of the area, whole", MinSize - 30,
			[]string{line('a', 20), line('b', 40), line('c', 20)}, []string{line('a', 20), line('b', 40), line('c', 20)}},
		{"a long line across the end of the area, whole", MinSize - 30,
			[]string{line('a', 300)}, []string{line('a', 300)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader, writer := pair(t, MinSize)
			rd, w := NewReader(reader), NewWriter(writer, nil, 0)
			if tt.skip > 0 {
				_, err := w.Write(make([]byte, tt.skip))
				require.NoError(t, err)
				_, err = rd.Drain(MinSize, func([]byte) error { return nil })
				require.NoError(t, err)
			}
			for _, r := range tt.records {
				_, err := w.Write([]byte(r))
				require.NoError(t, err)
			}
			var got []string
			for {
				n, err := rd.Drain(100, func(c []byte) error { got = append(got, string(c)); return nil })
				require.NoError(t, err)
				if n == 0 {
					break
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDrainStopsAtAnError(t *testing.T) {
	reader, writer := pair(t, MinSize)
	rd, w := NewReader(reader), NewWriter(writer, nil, 0)
	for _, r := range []string{strings.Repeat("a", 99) + "\n", "b\n"} {
		_, err := w.Write([]byte(r))
		require.NoError(t, err)
	}
	boom := errors.New("boom")
	n, err := rd.Drain(100, func([]byte) error { return boom })
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 100, n, "the chunk fn failed on is handed over (and freed) all the same")
	got, _ := drainAll(t, rd)
	assert.Equal(t, "b\n", string(got))
}

// TestWriterDiesInTheMiddle: a writer killed while it copies a record
// leaves the records before it whole and nothing of its own.
func TestWriterDiesInTheMiddle(t *testing.T) {
	reader, writer := pair(t, MinSize)
	rd, w := NewReader(reader), NewWriter(writer, nil, 0)
	for range 30 { // around the end of the data area, then a record across it
		_, err := w.Write(bytes.Repeat([]byte("a"), 130))
		require.NoError(t, err)
		drainAll(t, rd)
	}
	for _, s := range []string{"a\n", "b\n"} {
		_, err := w.Write([]byte(s))
		require.NoError(t, err)
	}
	assert.False(t, rd.Interrupted())
	w.DieWriting(300)

	got, _ := drainAll(t, rd)
	assert.Equal(t, "a\nb\n", string(got), "the records written before, and no byte of the interrupted one")
	assert.True(t, rd.Interrupted(), "the reader sees that the writer died in the middle of a record")
	assert.False(t, rd.Pending())
}

func TestFullRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader, writer := pair(t, MinSize)
		rd, w := NewReader(reader), NewWriter(writer, nil, time.Second)
		rec := append(bytes.Repeat([]byte("f"), 999), '\n') // 4 fit
		for range 4 {
			_, err := w.Write(rec)
			require.NoError(t, err)
		}

		start := time.Now()
		n, err := w.Write(rec)
		assert.ErrorIs(t, err, ErrFull)
		assert.Zero(t, n)
		assert.Equal(t, time.Second, time.Since(start), "the first write waits for the bound")
		assert.Equal(t, uint64(1), reader.Dropped(), "counted where the reader sees it")

		start = time.Now()
		_, err = w.Write(rec)
		assert.ErrorIs(t, err, ErrFull)
		assert.Zero(t, time.Since(start), "nothing was freed since a write gave up: the next one does not wait")
		assert.Equal(t, uint64(2), reader.Dropped())

		// A write that waits while the reader frees room gets in.
		done := make(chan error)
		go func() {
			_, err := w.Write(rec)
			done <- err
		}()
		var got []byte
		n, err = rd.Drain(1000, func(c []byte) error { got = append(got, c...); return nil })
		require.NoError(t, err)
		require.Equal(t, 4000, n, "everything, in chunks of 1000")
		assert.NoError(t, <-done)
		rest, _ := drainAll(t, rd)
		assert.Equal(t, bytes.Repeat(rec, 5), append(got, rest...))

		_, err = w.Write(make([]byte, MinSize))
		assert.ErrorIs(t, err, ErrTooLarge, "a record and its newline the ring can never hold")
		assert.Equal(t, uint64(3), reader.Dropped())
		_, err = w.Write(append(make([]byte, MinSize-1), '\n'))
		assert.NoError(t, err, "a record the size of the ring fits, once it is empty")
	})
}

func TestBell(t *testing.T) {
	var p [2]int
	require.NoError(t, syscall.Pipe(p[:]))
	require.NoError(t, syscall.SetNonblock(p[0], true))
	require.NoError(t, syscall.SetNonblock(p[1], true))
	bellR, bellW := os.NewFile(uintptr(p[0]), "bell-r"), os.NewFile(uintptr(p[1]), "bell-w")
	defer bellR.Close()
	defer bellW.Close()
	rings := func() int {
		var b [64]byte
		n, err := syscall.Read(p[0], b[:])
		if err != nil {
			return 0
		}
		return n
	}

	reader, writer := pair(t, MinSize)
	rd, w := NewReader(reader), NewWriter(writer, bellW, 0)
	rec := append(bytes.Repeat([]byte("b"), 499), '\n')
	for range 4 { // 2000 of 4096 bytes: not past half
		_, err := w.Write(rec)
		require.NoError(t, err)
	}
	assert.Zero(t, rings(), "no ring below half full")
	for range 3 {
		_, err := w.Write(rec)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, rings(), "one ring past half full, until the reader arms the bell again")
	drainAll(t, rd)
	for range 7 {
		_, err := w.Write(rec)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, rings(), "armed again by the drain")
}

func TestConcurrentWriters(t *testing.T) {
	reader, writer := pair(t, 64<<10)
	rd, w := NewReader(reader), NewWriter(writer, nil, time.Minute)
	const writers, each = 8, 5000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				line := fmt.Sprintf("g%d %d %s\n", g, i, smallPad(g, i))
				if _, err := w.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	check := newSeqChecker(writers, smallPad)
	feed := func(c []byte) error { check.feed(t, c); return nil }
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		_, err := rd.Drain(64<<10, feed)
		require.NoError(t, err)
	}
	_, err := rd.Drain(64<<10, feed)
	require.NoError(t, err)
	assert.Equal(t, []int{each, each, each, each, each, each, each, each}, check.next, "records per writer")
	assert.Zero(t, reader.Dropped())
}

// smallPad and bigPad are the paddings of writer g's record i.
func smallPad(g, i int) string { return strings.Repeat("p", (g*31+i)%200) }
func bigPad(g, i int) string   { return bigPads[g%4][i%104] }

// bigPads are the paddings of TestKilledWriter's records, made once so
// that the writers spend their time copying into the ring and the reader
// keeps up with them.
var bigPads = func() (p [4][104]string) {
	for g := range p {
		for i := range p[g] {
			p[g][i] = strings.Repeat(string(rune('a'+(g+i)%26)), 24<<10+(i%8)<<10)
		}
	}
	return p
}()

// seqChecker checks, as they are drained, that the records of each of the
// writers are "g<g> <i> <pad(g, i)>" with i counting from 0 and no gap,
// whole and once; next[g] is the count of writer g's records so far.
type seqChecker struct {
	pad  func(g, i int) string
	next []int
}

func newSeqChecker(writers int, pad func(g, i int) string) *seqChecker {
	return &seqChecker{pad: pad, next: make([]int, writers)}
}

// feed checks whole records, each ending in a newline.
func (c *seqChecker) feed(t *testing.T, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	if out[len(out)-1] != '\n' {
		t.Fatalf("the records end in %q, not in a newline", out[max(0, len(out)-20):])
	}
	for len(out) > 0 {
		line, rest, _ := bytes.Cut(out, []byte("\n"))
		out = rest
		head, p, _ := bytes.Cut(line, []byte(" "))
		head2, p, _ := bytes.Cut(p, []byte(" "))
		g, err1 := strconv.Atoi(strings.TrimPrefix(string(head), "g"))
		i, err2 := strconv.Atoi(string(head2))
		if err1 != nil || err2 != nil || g < 0 || g >= len(c.next) || head[0] != 'g' {
			t.Fatalf("malformed record %.80q", line)
		}
		if string(p) != c.pad(g, i) {
			t.Fatalf("record %.80q: torn padding", line)
		}
		if i != c.next[g] {
			t.Fatalf("writer %d: record %d after %d (a gap or a duplicate)", g, i, c.next[g]-1)
		}
		c.next[g]++
	}
}

func TestCorruptRing(t *testing.T) {
	tests := []struct {
		name     string
		scribble func(r *Ring)
	}{
		{"head behind tail", func(r *Ring) { r.head.Store(8) }}, // after 100 bytes were drained
		{"head more than a ring ahead", func(r *Ring) { r.head.Store(r.size + 200) }},
		{"locked head more than a ring ahead", func(r *Ring) { r.head.Store((r.size + 200) | lockBit) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader, writer := pair(t, MinSize)
			rd := NewReader(reader)
			_, err := NewWriter(writer, nil, 0).Write(make([]byte, 100))
			require.NoError(t, err)
			drainAll(t, rd)
			tt.scribble(writer)
			called := false
			_, err = rd.Drain(1<<20, func([]byte) error { called = true; return nil })
			assert.ErrorIs(t, err, ErrCorrupt)
			assert.False(t, called, "nothing handed over")
			_, err = rd.Drain(1<<20, func([]byte) error { return nil })
			assert.ErrorIs(t, err, ErrCorrupt, "and on every later call")
		})
	}
}

// FuzzDrain: whatever the writing process leaves in the ring, Drain never
// reads out of bounds, hands over more than the ring holds or a chunk
// larger than the limit that does not hold a single line.
func FuzzDrain(f *testing.F) {
	f.Add(uint64(16), uint64(0), uint16(100), []byte("hello\nworld\n"))
	f.Add(uint64(4096|lockBit), uint64(8), uint16(10), []byte{255, '\n', 255, 255, 1})
	f.Add(uint64(4200), uint64(4090), uint16(1), []byte("a\nbb\nccc"))
	f.Fuzz(func(t *testing.T, head, tail uint64, limit uint16, data []byte) {
		reader, writer := pair(t, MinSize)
		copy(writer.data, data)
		writer.head.Store(head)
		writer.tail.Store(tail)
		rd := NewReader(reader)
		total := 0
		for range 3 {
			n, _ := rd.Drain(int(limit), func(c []byte) error {
				if len(c) > max(int(limit), 1) && bytes.IndexByte(c[:len(c)-1], '\n') >= 0 {
					t.Fatalf("a chunk of %d bytes, limit %d, with more than one line", len(c), limit)
				}
				if len(c) == 0 {
					t.Fatal("an empty chunk")
				}
				return nil
			})
			total += n
		}
		if total > MinSize {
			t.Fatalf("drained %d bytes from a ring of %d", total, MinSize)
		}
	})
}
