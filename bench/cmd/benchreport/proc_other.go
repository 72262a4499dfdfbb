//go:build !linux

package main

import (
	"errors"
	"os/exec"
	"time"
)

func procCPU(int) (time.Duration, error) {
	return 0, errors.New("benchreport: server CPU time needs Linux (/proc)")
}

func procTree(int) (time.Duration, []int, error) {
	return 0, nil, errors.New("benchreport: server CPU time needs Linux (/proc)")
}

func dieWithParent(*exec.Cmd) {}

func machineBusy() (time.Duration, error) {
	return 0, errors.New("benchreport: machine CPU time needs Linux (/proc/stat)")
}

func parseMachineBusy([]byte) (time.Duration, error) {
	return 0, errors.New("benchreport: /proc is Linux only")
}
