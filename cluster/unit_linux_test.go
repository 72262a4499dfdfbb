package cluster

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestInheritanceMatches(t *testing.T) {
	tests := []struct {
		name          string
		have          [2]string // the supervisor's network and address
		network, addr string
		want          bool
	}{
		{"same port, any host", [2]string{"tcp", "[::]:8080"}, "tcp", ":8080", true},
		{"same port, named host", [2]string{"tcp", "127.0.0.1:8080"}, "tcp", "localhost:8080", true},
		{"service name", [2]string{"tcp", "0.0.0.0:80"}, "tcp", ":http", true},
		{"tcp4 asks for the tcp socket", [2]string{"tcp", "0.0.0.0:8080"}, "tcp4", ":8080", true},
		{"other port", [2]string{"tcp", "[::]:8080"}, "tcp", ":9090", false},
		{"port zero", [2]string{"tcp", "[::]:8080"}, "tcp", ":0", false},
		{"no port", [2]string{"tcp", "[::]:8080"}, "tcp", "localhost", false},
		{"tcp for a unix socket", [2]string{"unix", "/run/app.sock"}, "tcp", ":8080", false},
		{"unix path that reads as host:port", [2]string{"unix", "/run/app:8080"}, "tcp", ":8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inh := &inheritance{network: tt.have[0], addr: tt.have[1]}
			assert.Equal(t, tt.want, inh.matches(tt.network, tt.addr), "matches(%q, %q)", tt.network, tt.addr)
		})
	}
}

func TestWorkerEnv(t *testing.T) {
	tests := []struct {
		name       string
		limit      int64
		gomemlimit string // in the supervisor's environment; "" unset
		want       string // GOMEMLIMIT entry; "" none
	}{
		{"no memory limit", 0, "", ""},
		{"90% of the limit", 1000 << 20, "", "GOMEMLIMIT=943718400"},
		{"the operator's GOMEMLIMIT wins", 1000 << 20, "512MiB", "GOMEMLIMIT=512MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvWorkerID, "7") // from an outer supervisor: not passed on
			t.Setenv(envAddr, "tcp :1")
			t.Setenv("GOMEMLIMIT", "x")
			if tt.gomemlimit == "" {
				require.NoError(t, os.Unsetenv("GOMEMLIMIT"))
			} else {
				t.Setenv("GOMEMLIMIT", tt.gomemlimit)
			}
			env := workerEnv(&config{memoryLimit: tt.limit})
			var got []string
			for _, kv := range env {
				assert.False(t, strings.HasPrefix(kv, EnvWorkerID+"=") || strings.HasPrefix(kv, envAddr+"="),
					"inherited supervisor variable %q", kv)
				if strings.HasPrefix(kv, "GOMEMLIMIT=") {
					got = append(got, kv)
				}
			}
			if tt.want == "" {
				assert.Empty(t, got, "GOMEMLIMIT entries")
			} else {
				assert.Equal(t, []string{tt.want}, got, "GOMEMLIMIT entries")
			}
		})
	}
}

func TestExecutableIsTheRunningProgram(t *testing.T) {
	exe, err := executable()
	require.NoError(t, err)
	st1, err := os.Stat(exe)
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	st2, err := os.Stat(self)
	require.NoError(t, err)
	assert.True(t, os.SameFile(st1, st2), "executable() = %q, want the running program %q", exe, self)
}

// TestDupListenerKeepsNonBlocking: handing the socket to a child process
// must not switch it to blocking mode, which would hang the workers
// already accepting on it.
func TestDupListenerKeepsNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	f, err := dupListener(ln)
	require.NoError(t, err)
	defer f.Close()
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	cmd.ExtraFiles = []*os.File{f}
	require.NoError(t, cmd.Run())

	rc, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	var flags int
	require.NoError(t, rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }))
	require.NoError(t, err)
	assert.NotZero(t, flags&unix.O_NONBLOCK, "O_NONBLOCK on the shared socket after starting a child")
}

func TestListenRejectsOtherNetworks(t *testing.T) {
	for _, network := range []string{"udp", "unix", "ip4:icmp", ""} {
		t.Run(network, func(t *testing.T) {
			_, err := Listen(context.Background(), network, "127.0.0.1:0")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "want tcp, tcp4 or tcp6", "error")
		})
	}
}

// TestListenSharesPort: two Listen calls on one port both succeed, and a
// plain listener on that port is refused.
func TestListenSharesPort(t *testing.T) {
	ctx := context.Background()
	ln1, err := Listen(ctx, "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln1.Close()
	ln2, err := Listen(ctx, "tcp", ln1.Addr().String())
	require.NoError(t, err, "second Listen on the same port")
	defer ln2.Close()
	assert.Equal(t, ln1.Addr().String(), ln2.Addr().String(), "address")
	plain, err := net.Listen("tcp", ln1.Addr().String())
	if err == nil {
		plain.Close()
	}
	assert.Error(t, err, "plain net.Listen on a SO_REUSEPORT port")

	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	ln3, err := Listen(ctx, "tcp", held.Addr().String())
	if err == nil {
		ln3.Close()
	}
	assert.Error(t, err, "Listen on a port held by a plain listener (the supervisor's kind)")
}
