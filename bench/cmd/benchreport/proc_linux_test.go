package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain command",
			in:   "4242 (benchreport) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 100 1000000 500 18446744073709551615",
			want: 3800 * time.Millisecond,
		},
		{
			name: "command with spaces and parentheses",
			in:   "7 (my (odd) cmd) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 1 1 1",
			want: 30 * time.Millisecond,
		},
		{"no command", "7 R 1", 0, true},
		{"short", "7 (x) R 1 7", 0, true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0 0", 0, true},
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

func TestParseMachineBusy(t *testing.T) {
	in := "cpu  1000 10 200 5000 30 7 300 5 0 0\ncpu0 500 5 100 2500 15 3 150 2 0 0\n"
	got, err := parseMachineBusy([]byte(in))
	require.NoError(t, err)
	// user + nice + system + irq + softirq + steal; idle and iowait left out.
	assert.Equal(t, 15220*time.Millisecond, got)

	_, err = parseMachineBusy([]byte("intr 1 2 3\n"))
	assert.Error(t, err, "a first line that is not the cpu total")
}
