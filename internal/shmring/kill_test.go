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
// got, from each goroutine, every record it wrote, whole and once: its
// records from the first on without a gap. Most kills land in the middle
// of a copy; that record is not in the ring at all.
func TestKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	interrupted := 0
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
		feed := func(c []byte) error { check.feed(t, c); return nil }
		var kill <-chan time.Time
		for deadline := time.Now().Add(time.Minute); ; {
			select {
			case <-kill:
			default:
				n, err := rd.Drain(1<<20, feed)
				require.NoError(t, err)
				if kill == nil && n > 0 {
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

		_, err = rd.Drain(1<<20, feed)
		require.NoError(t, err)
		t.Logf("run %d: records per writer %v, killed in the middle of a record: %v", run, check.next, rd.Interrupted())
		if rd.Interrupted() {
			interrupted++
		}
		assert.Zero(t, r.Dropped())
		require.NoError(t, r.Close())
	}
	assert.Positive(t, interrupted, "some kills landed in the middle of a copy")
}
