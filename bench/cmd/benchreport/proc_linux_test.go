package main

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain command",
			in:   "4242 (benchreport) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 100 1000000 500 18446744073709551615",
			want: procStat{ppid: 1, cpu: 3800 * time.Millisecond},
		},
		{
			name: "command with spaces and parentheses",
			in:   "7 (my (odd) cmd) R 3 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 1 1 1",
			want: procStat{ppid: 3, cpu: 30 * time.Millisecond},
		},
		{"no command", "7 R 1", procStat{}, true},
		{"short", "7 (x) R 1 7", procStat{}, true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0 0", procStat{}, true},
		{"parent not a number", "7 (x) R p 7 7 0 -1 0 0 0 0 0 1 2 0 0", procStat{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(c.in))
			if c.wantErr {
				assert.Error(t, err, "got %v", got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestProcCPUSelf(t *testing.T) {
	// Burn a little CPU so that the count cannot be zero at 10 ms ticks.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	got, err := procCPU(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, got, "CPU time of this process")
}

func TestTreeCPU(t *testing.T) {
	stats := map[int]procStat{
		1:  {ppid: 0, cpu: 1000 * time.Second}, // init: not in the tree
		10: {ppid: 1, cpu: 1 * time.Second},    // the Node primary
		12: {ppid: 10, cpu: 2 * time.Second},   // a worker
		11: {ppid: 10, cpu: 3 * time.Second},   // another
		20: {ppid: 11, cpu: 4 * time.Second},   // a worker's child
		30: {ppid: 1, cpu: 5 * time.Second},    // a sibling of the primary
	}
	cpu, pids := treeCPU(10, stats)
	assert.Equal(t, 10*time.Second, cpu, "primary + workers + grandchild")
	assert.Equal(t, []int{10, 11, 12, 20}, pids, "root first, then breadth first in pid order")

	cpu, pids = treeCPU(30, stats)
	assert.Equal(t, 5*time.Second, cpu, "a process without children")
	assert.Equal(t, []int{30}, pids)
}

// procTree finds a child this test starts and counts this process's CPU.
func TestProcTreeSelf(t *testing.T) {
	child := exec.Command("sleep", "30")
	require.NoError(t, child.Start())
	defer func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	}()
	self, err := procCPU(os.Getpid())
	require.NoError(t, err)
	cpu, pids, err := procTree(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cpu, self, "the tree's CPU includes this process's")
	assert.Equal(t, os.Getpid(), pids[0], "root first")
	assert.Contains(t, pids, child.Process.Pid, "the child is in the tree")

	_, _, err = procTree(1 << 30)
	assert.Error(t, err, "a pid that does not exist")
}

func TestParseMachineBusy(t *testing.T) {
	in := "cpu  1000 10 200 5000 30 7 300 5 0 0\ncpu0 500 5 100 2500 15 3 150 2 0 0\n"
	got, err := parseMachineBusy([]byte(in))
	require.NoError(t, err)
	// user + nice + system + irq + softirq + steal; idle and iowait left out.
	assert.Equal(t, 15220*time.Millisecond, got)

	_, err = parseMachineBusy([]byte("intr 1 2 3\n"))
	assert.Error(t, err, "a first line that is not the cpu total")
}
