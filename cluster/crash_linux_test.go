package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMountinfo(t *testing.T) {
	hybrid := []byte(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`)
	assert.Equal(t, cgroupMounts{v1Root: "/", v1Dir: "/sys/fs/cgroup/memory", v2Dir: "/sys/fs/cgroup/unified"}, parseMountinfo(hybrid))
	container := []byte(`1500 1400 0:77 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup memory rw,memory,hugetlb
`)
	assert.Equal(t, cgroupMounts{v1Root: "/docker/abc", v1Dir: "/sys/fs/cgroup/memory"}, parseMountinfo(container))
	unified := []byte(`29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
`)
	assert.Equal(t, cgroupMounts{v2Dir: "/sys/fs/cgroup"}, parseMountinfo(unified))
	assert.Equal(t, cgroupMounts{}, parseMountinfo([]byte("garbage\n - \n")))
}

func TestCounterFile(t *testing.T) {
	all := func(string) bool { return true }
	tests := []struct {
		name   string
		m      cgroupMounts
		cg     string
		exists func(string) bool
		want   string
	}{
		{"v1 memory", cgroupMounts{v1Root: "/", v1Dir: "/sys/fs/cgroup/memory", v2Dir: "/sys/fs/cgroup/unified"},
			"9:name=systemd:/\n4:memory:/app/w1\n0::/\n", all, "/sys/fs/cgroup/memory/app/w1/memory.oom_control"},
		{"v1 memory in a container", cgroupMounts{v1Root: "/docker/abc", v1Dir: "/sys/fs/cgroup/memory"},
			"5:memory,hugetlb:/docker/abc\n", all, "/sys/fs/cgroup/memory/memory.oom_control"},
		{"v2", cgroupMounts{v2Dir: "/sys/fs/cgroup"}, "0::/system.slice/app.service\n", all,
			"/sys/fs/cgroup/system.slice/app.service/memory.events"},
		{"hybrid, v2 without the memory controller", cgroupMounts{v1Root: "/", v1Dir: "/m", v2Dir: "/u"}, "0::/\n4:memory:/x\n",
			func(p string) bool { return p == "/m/x/memory.oom_control" }, "/m/x/memory.oom_control"},
		{"no memory cgroup", cgroupMounts{}, "1:cpu:/\n", all, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := counterFile(tt.m, []byte(tt.cg), tt.exists)
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOOMKills(t *testing.T) {
	n, err := oomKills([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "v1 memory.oom_control")
	n, err = oomKills([]byte("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "v2 memory.events")
	_, err = oomKills([]byte("oom 2\n"))
	assert.Error(t, err)
}

func TestOOMRecord(t *testing.T) {
	rec := []byte("3,1234,7744776327,-;Memory cgroup out of memory: Killed process 29146 (tail) total-vm:34948kB, anon-rss:32128kB\n SUBSYSTEM=memory\n")
	line, ok := oomRecord(rec, 29146, 7000*time.Second)
	assert.True(t, ok)
	assert.Equal(t, "Memory cgroup out of memory: Killed process 29146 (tail) total-vm:34948kB, anon-rss:32128kB", line)
	_, ok = oomRecord(rec, 2914, 0)
	assert.False(t, ok, "another pid that is a prefix")
	_, ok = oomRecord(rec, 29146, 8000*time.Second)
	assert.False(t, ok, "a record from before the worker started (an earlier process with the pid)")
	_, ok = oomRecord([]byte("6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,task=tail,pid=29146,uid=0"), 29146, 0)
	assert.False(t, ok, "the summary line: the Killed process line says it")
	_, ok = oomRecord([]byte("no header"), 1, 0)
	assert.False(t, ok)
}

// TestOOMEvidenceFromTheCgroupCount: without a kernel record naming the
// process, a count that rose during the worker's life is the evidence;
// one that did not is none.
func TestOOMEvidenceFromTheCgroupCount(t *testing.T) {
	file := filepath.Join(t.TempDir(), "memory.oom_control")
	require.NoError(t, os.WriteFile(file, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"), 0o644))
	// since lies after every kernel record there is, so that only the
	// count can speak.
	probe := oomProbe{counter: file, kills: 4, since: monotonic() + time.Hour}
	assert.Empty(t, probe.evidence(os.Getpid()), "a count that did not rise")
	require.NoError(t, os.WriteFile(file, []byte("oom_kill_disable 0\nunder_oom 1\noom_kill 5\n"), 0o644))
	assert.Equal(t, "killed by the OOM killer: oom_kill of "+filepath.Dir(file)+" rose from 4 to 5", probe.evidence(os.Getpid()))
	assert.Empty(t, oomProbe{since: monotonic() + time.Hour}.evidence(os.Getpid()), "no counter, no record")
}
