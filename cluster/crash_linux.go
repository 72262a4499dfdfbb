package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// oomProbe is what the supervisor notes when a worker starts, to tell,
// if it dies of a SIGKILL the supervisor did not send, whether the
// kernel's OOM killer sent it: the oom_kill count of the worker's memory
// cgroup, and the time, for the kernel log's records.
type oomProbe struct {
	counter string // memory.events (cgroup v2) or memory.oom_control (v1); "" unknown
	kills   int64
	since   time.Duration // CLOCK_MONOTONIC at the start
}

func startOOMProbe(pid int) oomProbe {
	o := oomProbe{since: monotonic()}
	if file, ok := memoryCounterFile(pid); ok {
		if n, err := readOOMKills(file); err == nil {
			o.counter, o.kills = file, n
		}
	}
	return o
}

// evidence returns why the SIGKILL of pid was the OOM killer's, "" when
// nothing says so: the kernel's record that names the process (when
// /dev/kmsg is readable, which takes root), else the cgroup's count that
// rose during the worker's life.
func (o oomProbe) evidence(pid int) string {
	if line := kernelOOMRecord(pid, o.since-5*time.Second); line != "" {
		return line
	}
	if o.counter == "" {
		return ""
	}
	n, err := readOOMKills(o.counter)
	if err != nil || n <= o.kills {
		return ""
	}
	return "killed by the OOM killer: oom_kill of " + filepath.Dir(o.counter) + " rose from " +
		strconv.FormatInt(o.kills, 10) + " to " + strconv.FormatInt(n, 10)
}

func monotonic() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// cgroupMounts are the mount points of the cgroup v1 memory hierarchy (and
// its root in this mount namespace) and of the cgroup v2 hierarchy, from
// /proc/self/mountinfo.
type cgroupMounts struct {
	v1Root, v1Dir string
	v2Dir         string
}

var mounts = sync.OnceValue(func() cgroupMounts {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return cgroupMounts{}
	}
	return parseMountinfo(b)
})

// parseMountinfo reads the lines of /proc/self/mountinfo: "36 25 0:31 /
// /sys/fs/cgroup/memory rw,… shared:14 - cgroup cgroup rw,memory".
func parseMountinfo(b []byte) cgroupMounts {
	var m cgroupMounts
	for line := range bytes.Lines(b) {
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			continue
		}
		f, g := strings.Fields(string(pre)), strings.Fields(string(post))
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			if m.v2Dir == "" {
				m.v2Dir = f[4]
			}
		case "cgroup":
			for opt := range strings.SplitSeq(g[2], ",") {
				if opt == "memory" && m.v1Dir == "" {
					m.v1Root, m.v1Dir = f[3], f[4]
				}
			}
		}
	}
	return m
}

// memoryCounterFile returns the file that counts the OOM kills of pid's
// memory cgroup.
func memoryCounterFile(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", false
	}
	return counterFile(mounts(), b, func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	})
}

// counterFile finds the memory cgroup in /proc/<pid>/cgroup's lines
// ("4:memory:/app" for v1, "0::/app" for v2) and returns its OOM counter
// file under the mounts, the first of v1 and v2 that exists.
func counterFile(m cgroupMounts, procCgroup []byte, exists func(string) bool) (string, bool) {
	for line := range bytes.Lines(procCgroup) {
		parts := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "" && m.v2Dir != "":
			file = filepath.Join(m.v2Dir, parts[2], "memory.events")
		case m.v1Dir != "" && hasController(parts[1], "memory"):
			rel := parts[2]
			if m.v1Root != "/" {
				rel = strings.TrimPrefix(rel, m.v1Root)
			}
			file = filepath.Join(m.v1Dir, rel, "memory.oom_control")
		default:
			continue
		}
		if exists(file) {
			return file, true
		}
	}
	return "", false
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readOOMKills reads the "oom_kill N" line of memory.events or
// memory.oom_control.
func readOOMKills(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return oomKills(b)
}

func oomKills(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("cluster: no oom_kill count")
}

// maxKmsgRecords bounds how much of the kernel log one look reads.
const maxKmsgRecords = 100000

// kernelOOMRecord returns the kernel's record of the OOM killer killing
// pid, logged after since (CLOCK_MONOTONIC, which the kernel log's
// timestamps follow closely), or "" when there is none or /dev/kmsg
// cannot be read.
func kernelOOMRecord(pid int, since time.Duration) string {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	var found string
	for range maxKmsgRecords {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, syscall.EPIPE) {
			continue // records were overwritten while we read
		}
		if err != nil || n <= 0 {
			break
		}
		if line, ok := oomRecord(buf[:n], pid, since); ok {
			found = line
		}
	}
	return found
}

// oomRecord reads one /dev/kmsg record ("3,1234,7744776327,-;Memory cgroup
// out of memory: Killed process 29146 (app) total-vm:…") and reports
// whether it is the OOM killer's record of pid, logged at or after since.
func oomRecord(rec []byte, pid int, since time.Duration) (string, bool) {
	head, msg, ok := bytes.Cut(rec, []byte(";"))
	if !ok {
		return "", false
	}
	fields := bytes.Split(head, []byte(","))
	if len(fields) < 3 {
		return "", false
	}
	usec, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil || time.Duration(usec)*time.Microsecond < since {
		return "", false
	}
	msg, _, _ = bytes.Cut(msg, []byte("\n")) // continuation lines are key=value pairs
	if !bytes.Contains(msg, []byte("Killed process "+strconv.Itoa(pid)+" (")) {
		return "", false
	}
	return string(msg), true
}

// growPipe asks the kernel for a pipe buffer of size bytes (the default
// is 64 KiB); beyond /proc/sys/fs/pipe-max-size, or over the user's pipe
// quota, the pipe keeps its size.
func growPipe(f *os.File, size int) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size) })
	}
}
