//go:build unix

package shmring

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envWriter makes the test binary the writing process of TestKilledWriter.
const envWriter = "SHMRING_TEST_WRITER"

const killWriters = 4

func TestMain(m *testing.M) {
	if os.Getenv(envWriter) != "" {
		writerMain()
	}
	os.Exit(m.Run())
}

// writerMain maps the ring at descriptor 3 and writes big records from
// killWriters goroutines until it is killed.
func writerMain() {
	r, err := Map(os.NewFile(3, "ring"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := NewWriter(r, nil, time.Minute)
	for g := range killWriters {
		go func() {
			var b []byte
			for i := 0; ; i++ {
				b = fmt.Appendf(b[:0], "g%d %d ", g, i)
				b = append(append(b, bigPad(g, i)...), '\n')
				if _, err := w.Write(b); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
			}
		}()
	}
	select {}
}

// TestKilledWriter kills a process with SIGKILL while its goroutines
// write records of about 30 KiB, ten times, and checks that the reader
// got, from each goroutine, every record it committed, whole and once: its
// records from the first on without a gap (a torn record is always the
// last of its goroutine). The kill lands in the middle of copies; those
// records are skipped.
func TestKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	torn := 0
	for run := range 10 {
		f, r, err := Create("test", 16<<20)
		require.NoError(t, err)
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envWriter+"=1")
		cmd.ExtraFiles = []*os.File{f}
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		f.Close()

		// Drain and check while it writes; kill it at a random moment once
		// it has written for a while.
		rd := NewReader(r)
		check := newSeqChecker(killWriters, bigPad)
		var buf []byte
		var kill <-chan time.Time
		for deadline := time.Now().Add(time.Minute); ; {
			select {
			case <-kill:
			default:
				var st Stats
				var err error
				buf, st, err = rd.Drain(buf[:0], 1<<20, false)
				require.NoError(t, err)
				check.feed(t, buf)
				if kill == nil && st.Records > 0 {
					kill = time.After(time.Duration(2000+rand.IntN(8000)) * time.Microsecond)
				}
				require.True(t, time.Now().Before(deadline), "the writer wrote nothing within a minute")
				continue
			}
			break
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "killed", "run %d: the writer was killed, it did not fail", run)

		rest, st := drainAll(t, rd, true)
		check.feed(t, rest)
		t.Logf("run %d: records per writer %v, torn %d", run, check.next, st.Torn)
		torn += st.Torn
		assert.LessOrEqual(t, st.Torn, killWriters, "at most one torn record per goroutine")
		assert.Zero(t, r.Dropped())
		require.NoError(t, r.Close())
	}
	assert.Positive(t, torn, "some kills landed in the middle of a copy")
}
