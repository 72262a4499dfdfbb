package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedisStartKillRestart(t *testing.T) {
	r := StartRedis(t)
	require.Equal(t, "+PONG", redisPing(t, r.Addr))
	r.Kill()
	_, err := net.DialTimeout("tcp", r.Addr, time.Second)
	require.Error(t, err, "redis-server still accepts after Kill")
	r.Restart()
	assert.Equal(t, "+PONG", redisPing(t, r.Addr))
}

func redisPing(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "PING\r\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

func TestNginxServesAndLogs(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644))
	ng := StartNginx(t, fmt.Sprintf("listen {{ADDR}};\nroot %s;", root))
	resp, err := http.Get("http://" + ng.Addr + "/a.txt")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello", string(body))
	require.Eventually(t, func() bool { return strings.Contains(ng.AccessLog(t), `"GET /a.txt HTTP/1.1" 200 5`) },
		5*time.Second, 20*time.Millisecond, "access log: %q", ng.AccessLog(t))
}

func TestHAProxyForwards(t *testing.T) {
	backend := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "backend")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Close() })

	front := FreePort(t)
	StartHAProxy(t, fmt.Sprintf(`
global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend f
  bind 127.0.0.1:{{PORT0}}
  default_backend b
backend b
  server s1 %s
`, ln.Addr()), front)
	resp, err := http.Get("http://" + Addr(front) + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "backend", string(body))
}

func TestLookPathMissing(t *testing.T) {
	if InCI() {
		t.Skip("CI=true turns a missing binary into a failure; this test checks the local skip")
	}
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		LookPath(ft, "shipshape-no-such-binary", "none")
	}()
	<-done
	assert.True(t, ft.skipped, "a missing binary skips locally")
	assert.Contains(t, ft.msg, "apt-get install none")
}

type fakeTB struct {
	testing.TB
	skipped bool
	msg     string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = true
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
