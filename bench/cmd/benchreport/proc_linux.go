package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// procCPU returns the user plus system CPU time used so far by every
// thread of process pid.
func procCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return st.cpu, err
}

// procTree returns the CPU time used so far by process pid and all its
// descendants (a Node cluster's primary and workers), and their pids, pid
// first. Processes that exit while /proc is read are left out; pid itself
// must be there.
func procTree(pid int) (cpu time.Duration, pids []int, err error) {
	root, err := readProcStat(pid)
	if err != nil {
		return 0, nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	stats := map[int]procStat{pid: root}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if st, err := readProcStat(p); err == nil {
			stats[p] = st
		}
	}
	cpu, pids = treeCPU(pid, stats)
	return cpu, pids, nil
}

// treeCPU sums the CPU time of root and its descendants in stats (by pid),
// and lists their pids, root first, then breadth first in pid order.
func treeCPU(root int, stats map[int]procStat) (time.Duration, []int) {
	children := map[int][]int{}
	for p, st := range stats {
		children[st.ppid] = append(children[st.ppid], p)
	}
	var cpu time.Duration
	pids := []int{root}
	for i := 0; i < len(pids); i++ {
		cpu += stats[pids[i]].cpu
		kids := children[pids[i]]
		slices.Sort(kids)
		pids = append(pids, kids...)
	}
	return cpu, pids
}

// procStat is what the report reads from /proc/<pid>/stat.
type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime, all threads
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads the parent pid (field 4), utime and stime (fields 14
// and 15) from the content of /proc/<pid>/stat. The command name, field 2,
// is in parentheses and may hold spaces, so the fields are counted from its
// closing parenthesis.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("benchreport: no command name in /proc stat %q", b)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("benchreport: short /proc stat %q", b)
	}
	pp, err0 := strconv.Atoi(string(f[1]))
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("benchreport: bad ppid, utime or stime in /proc stat %q", b)
	}
	return procStat{ppid: pp, cpu: time.Duration(u+s) * time.Second / userHZ}, nil
}

// dieWithParent makes the kernel send SIGTERM to cmd's process when this
// one exits, so that an interrupted report leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// machineBusy returns the CPU time all processors spent busy since boot
// (user, nice, system, irq, softirq and steal from /proc/stat), so that the
// time other processes took during a run can be told apart. The kernel
// charges the softirq work a process triggers (loopback TCP) to that
// process's stime as well, so it belongs in the total.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(b)
}

func parseMachineBusy(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("benchreport: unexpected /proc/stat line %q", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("benchreport: /proc/stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
