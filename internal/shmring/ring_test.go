//go:build unix

package shmring

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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

// drainAll drains until nothing is left to take.
func drainAll(t testing.TB, rd *Reader, final bool) ([]byte, Stats) {
	t.Helper()
	var out []byte
	var total Stats
	for {
		var st Stats
		var err error
		out, st, err = rd.Drain(out, 64<<10, final)
		require.NoError(t, err)
		total.Records += st.Records
		total.Torn += st.Torn
		total.Bytes += st.Bytes
		if st.Records == 0 && st.Torn == 0 {
			return out, total
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
	// Lengths that are not multiples of 8 walk the records around the end
	// of the data area at every offset.
	for i := range 500 {
		rec := []byte(fmt.Sprintf("record %d %s\n", i, strings.Repeat("x", i%97)))
		n, err := w.Write(rec)
		require.NoError(t, err)
		require.Equal(t, len(rec), n)
		want = append(want, rec...)
		if i%7 == 0 {
			got, _ := drainAll(t, rd, false)
			require.Equal(t, string(want), string(got), "after record %d", i)
			want = want[:0]
		}
	}
	got, _ := drainAll(t, rd, false)
	assert.Equal(t, string(want), string(got))

	n, err := w.Write(nil)
	assert.NoError(t, err)
	assert.Zero(t, n, "an empty write is no record")
	assert.False(t, rd.Pending())
}

func TestDrainLimit(t *testing.T) {
	reader, writer := pair(t, MinSize)
	rd, w := NewReader(reader), NewWriter(writer, nil, 0)
	for range 3 {
		_, err := w.Write(bytes.Repeat([]byte("a"), 100))
		require.NoError(t, err)
	}
	out, st, err := rd.Drain(nil, 150, false)
	require.NoError(t, err)
	assert.Equal(t, Stats{Records: 1, Bytes: 100}, st, "a record that would pass max waits")
	out, st, err = rd.Drain(out[:0], 10, false)
	require.NoError(t, err)
	assert.Equal(t, Stats{Records: 1, Bytes: 100}, st, "at least one record, however small max")
	assert.Len(t, out, 100)
	_, st, err = rd.Drain(nil, 1000, false)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Records)
}

// reserve does what Write does up to the commit: a writer killed while it
// copies its record leaves exactly this.
func (w *Writer) reserve(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.head
	w.r.word(h).Store(uint64(n))
	w.head = h + recordSize(n)
	w.r.head.Store(w.head)
}

func TestTornRecord(t *testing.T) {
	tests := []struct {
		name   string
		before []string // committed before the torn record
		after  []string // committed after it
	}{
		{"torn at the read position", nil, []string{"b\n", "c\n"}},
		{"torn between records", []string{"a\n"}, []string{"b\n", "c\n"}},
		{"torn last", []string{"a\n", "b\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader, writer := pair(t, MinSize)
			rd, w := NewReader(reader), NewWriter(writer, nil, 0)
			for _, s := range tt.before {
				_, err := w.Write([]byte(s))
				require.NoError(t, err)
			}
			w.reserve(300)
			for _, s := range tt.after {
				_, err := w.Write([]byte(s))
				require.NoError(t, err)
			}

			got, st := drainAll(t, rd, false)
			assert.Equal(t, strings.Join(tt.before, ""), string(got), "while the writer lives: up to the record it is still copying")
			assert.Zero(t, st.Torn)
			assert.True(t, rd.Pending())

			got, st = drainAll(t, rd, true)
			assert.Equal(t, strings.Join(tt.after, ""), string(got), "once it is gone: everything committed after the torn record")
			assert.Equal(t, 1, st.Torn, "the torn record is skipped, never returned")
			assert.False(t, rd.Pending())

			// The space is the writer's again.
			for range 100 {
				_, err := w.Write(bytes.Repeat([]byte("z"), 100))
				require.NoError(t, err)
				drainAll(t, rd, true)
			}
		})
	}
}

func TestFullRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader, writer := pair(t, MinSize)
		rd, w := NewReader(reader), NewWriter(writer, nil, time.Second)
		rec := bytes.Repeat([]byte("f"), 1000) // 1008 bytes a record: 4 fit
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
		_, st, err := rd.Drain(nil, 1000, false)
		require.NoError(t, err)
		require.Equal(t, 1, st.Records)
		assert.NoError(t, <-done)
		got, st := drainAll(t, rd, false)
		assert.Equal(t, 4, st.Records)
		assert.Equal(t, bytes.Repeat(rec, 4), got)

		_, err = w.Write(make([]byte, MinSize))
		assert.ErrorIs(t, err, ErrTooLarge, "a record the ring can never hold")
		assert.Equal(t, uint64(3), reader.Dropped())
	})
}

func TestBell(t *testing.T) {
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	bellR, bellW := os.NewFile(uintptr(p[0]), "bell-r"), os.NewFile(uintptr(p[1]), "bell-w")
	defer bellR.Close()
	defer bellW.Close()
	rings := func() int {
		var b [64]byte
		n, err := unix.Read(p[0], b[:])
		if err != nil {
			return 0
		}
		return n
	}

	reader, writer := pair(t, MinSize)
	rd, w := NewReader(reader), NewWriter(writer, bellW, 0)
	rec := bytes.Repeat([]byte("b"), 500)
	for range 4 { // 2032 of 4096 bytes: not past half
		_, err := w.Write(rec)
		require.NoError(t, err)
	}
	assert.Zero(t, rings(), "no ring below half full")
	for range 3 {
		_, err := w.Write(rec)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, rings(), "one ring past half full, until the reader arms the bell again")
	drainAll(t, rd, false)
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
	var out []byte
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		var err error
		out, _, err = rd.Drain(out, 64<<10, false)
		require.NoError(t, err)
	}
	out, _ = func() ([]byte, Stats) {
		rest, st := drainAll(t, rd, false)
		return append(out, rest...), st
	}()
	checkSequences(t, out, writers, smallPad, map[int]int{0: each, 1: each, 7: each})
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

// checkSequences checks that out holds, for each of the writers, the
// records "g<g> <i> <pad(g, i)>" with i counting from 0 and no gap, whole
// and once; want[g], when present, is the count expected from writer g.
// It returns each writer's count.
func checkSequences(t *testing.T, out []byte, writers int, pad func(g, i int) string, want map[int]int) []int {
	t.Helper()
	c := newSeqChecker(writers, pad)
	c.feed(t, out)
	for g, n := range want {
		assert.Equal(t, n, c.next[g], "records of writer %d", g)
	}
	return c.next
}

// seqChecker checks records as they are drained (see checkSequences).
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
		{"head behind tail", func(r *Ring) { r.tail.Store(64); r.head.Store(8) }},
		{"head a lap ahead", func(r *Ring) { r.head.Store(r.size + 8) }},
		{"head not aligned", func(r *Ring) { r.head.Store(12) }},
		{"length beyond head", func(r *Ring) { r.word(0).Store(500 | committed); r.head.Store(64) }},
		{"zero length", func(r *Ring) { r.word(0).Store(committed); r.head.Store(8) }},
		{"unknown bits", func(r *Ring) { r.word(0).Store(8 | committed | 1<<40); r.head.Store(16) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader, writer := pair(t, MinSize)
			rd := NewReader(reader)
			tt.scribble(writer)
			out, _, err := rd.Drain(nil, 1<<20, true)
			assert.ErrorIs(t, err, ErrCorrupt)
			assert.Empty(t, out)
			_, _, err = rd.Drain(nil, 1<<20, true)
			assert.ErrorIs(t, err, ErrCorrupt, "and on every later call")
		})
	}
}

// FuzzDrain: whatever the writing process leaves in the ring, Drain never
// reads out of bounds or returns more than the ring holds.
func FuzzDrain(f *testing.F) {
	f.Add(uint64(16), uint64(0), []byte{5, 0, 0, 0, 1, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'})
	f.Add(uint64(4096), uint64(8), []byte{255, 255, 255, 255, 1})
	f.Fuzz(func(t *testing.T, head, tail uint64, data []byte) {
		reader, writer := pair(t, MinSize)
		copy(writer.data, data)
		writer.head.Store(head)
		writer.tail.Store(tail)
		rd := NewReader(reader)
		for _, final := range []bool{false, true} {
			out, st, _ := rd.Drain(nil, 1<<20, final)
			if len(out) > MinSize || st.Bytes != len(out) {
				t.Fatalf("drained %d bytes (stats %+v) from a ring of %d", len(out), st, MinSize)
			}
		}
	})
}
