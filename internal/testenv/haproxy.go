//go:build unix

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// HAProxy is a haproxy started for one test in the foreground (-db).
type HAProxy struct {
	Dir  string // where the configuration was written
	Conf string

	proc *Process
}

// StartHAProxy checks cfg with `haproxy -c`, starts haproxy with it and
// waits until 127.0.0.1:port accepts connections for every port in ports.
// The placeholders {{DIR}} and {{PORT0}}, {{PORT1}}, … (the ports in order)
// are replaced first.
func StartHAProxy(t testing.TB, cfg string, ports ...int) *HAProxy {
	t.Helper()
	bin := LookPath(t, "haproxy", "haproxy")
	dir := t.TempDir()
	h := &HAProxy{Dir: dir, Conf: filepath.Join(dir, "haproxy.cfg")}
	pairs := []string{"{{DIR}}", dir}
	for i, p := range ports {
		pairs = append(pairs, "{{PORT"+strconv.Itoa(i)+"}}", strconv.Itoa(p))
	}
	cfg = strings.NewReplacer(pairs...).Replace(cfg)
	if err := os.WriteFile(h.Conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", h.Conf).CombinedOutput(); err != nil {
		t.Fatalf("testenv: haproxy -c: %v\n%s\nconfiguration:\n%s", err, out, cfg)
	}
	addrs := make([]string, len(ports))
	for i, p := range ports {
		addrs[i] = Addr(p)
	}
	h.proc = Start(t, "haproxy", exec.Command(bin, "-db", "-f", h.Conf), addrs...)
	return h
}

// Process is the haproxy process.
func (h *HAProxy) Process() *Process { return h.proc }
