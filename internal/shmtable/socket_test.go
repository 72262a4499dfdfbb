//go:build unix

package shmtable

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// The alternative to the shared table, kept as a test-only comparison: a
// worker asks the supervisor for every take over a unix socket, and the
// supervisor takes from its MemoryStore. This is the minimal realistic
// form: one connection per client goroutine (no multiplexing, no
// allocation per request on either side), a fixed binary frame each way,
// the server a separate process (the test binary run again) with a
// goroutine per connection.

const envSocketServer = "SHMTABLE_SOCKET_SERVER"

func TestMain(m *testing.M) {
	if path := os.Getenv(envSocketServer); path != "" {
		if err := socketServer(path); err != nil {
			fmt.Fprintln(os.Stderr, "socket server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A request is n (1 byte), the key's length (1 byte) and the key, the
// policy's limit (4 bytes), window (8 bytes) and the time (8 bytes, Unix
// ns); its name is fixed. A response is allowed (1 byte), then previous,
// current, elapsed and index (8 bytes each).
const respLen = 1 + 4*8

func socketServer(path string) error {
	store, err := ratelimit.NewMemoryStore()
	if err != nil {
		return err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() { // the test closes stdin to stop the server
		_, _ = io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil
		}
		go serveConn(c, store)
	}
}

func serveConn(c net.Conn, store *ratelimit.MemoryStore) {
	defer c.Close()
	r := bufio.NewReader(c)
	var hdr [2]byte
	var key [255]byte
	var tail [20]byte
	var out [respLen]byte
	ctx := context.Background()
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		k := key[:hdr[1]]
		if _, err := io.ReadFull(r, k); err != nil {
			return
		}
		if _, err := io.ReadFull(r, tail[:]); err != nil {
			return
		}
		p := ratelimit.Policy{Name: "default", Limit: int(binary.LittleEndian.Uint32(tail[0:])),
			Window: time.Duration(binary.LittleEndian.Uint64(tail[4:]))}
		now := time.Unix(0, int64(binary.LittleEndian.Uint64(tail[12:])))
		w, err := store.Take(ctx, p, unsafe.String(&k[0], len(k)), now, int(hdr[0]))
		if err != nil {
			return
		}
		out[0] = 0
		if w.Allowed {
			out[0] = 1
		}
		binary.LittleEndian.PutUint64(out[1:], uint64(w.Previous))
		binary.LittleEndian.PutUint64(out[9:], uint64(w.Current))
		binary.LittleEndian.PutUint64(out[17:], uint64(w.Elapsed))
		binary.LittleEndian.PutUint64(out[25:], uint64(w.Index))
		if _, err := c.Write(out[:]); err != nil {
			return
		}
	}
}

// socketClient is one goroutine's connection to the server.
type socketClient struct {
	c   net.Conn
	buf [2 + 255 + 20]byte
	in  [respLen]byte
}

func (sc *socketClient) take(p ratelimit.Policy, key string, now time.Time, n int) (ratelimit.Window, error) {
	if len(key) > 255 {
		return ratelimit.Window{}, errors.New("key too long")
	}
	b := sc.buf[:0]
	b = append(b, byte(n), byte(len(key)))
	b = append(b, key...)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Limit))
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Window))
	b = binary.LittleEndian.AppendUint64(b, uint64(now.UnixNano()))
	if _, err := sc.c.Write(b); err != nil {
		return ratelimit.Window{}, err
	}
	if _, err := io.ReadFull(sc.c, sc.in[:]); err != nil {
		return ratelimit.Window{}, err
	}
	return ratelimit.Window{
		Allowed:  sc.in[0] == 1,
		Previous: int64(binary.LittleEndian.Uint64(sc.in[1:])),
		Current:  int64(binary.LittleEndian.Uint64(sc.in[9:])),
		Elapsed:  time.Duration(binary.LittleEndian.Uint64(sc.in[17:])),
		Index:    int64(binary.LittleEndian.Uint64(sc.in[25:])),
	}, nil
}

// startSocketServer runs the server process and returns its socket.
func startSocketServer(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	require.NoError(tb, err)
	path := filepath.Join(tb.TempDir(), "s")
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envSocketServer+"="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	cmd.Stderr = os.Stderr
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return path
		}
		require.True(tb, time.Now().Before(deadline), "the socket server did not start")
	}
}

// TestSocketAlternative: the comparison's server answers as a MemoryStore
// does (so the benchmark measures a working design).
func TestSocketAlternative(t *testing.T) {
	path := startSocketServer(t)
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	sc := &socketClient{c: c}
	p := ratelimit.Policy{Name: "default", Limit: 2, Window: time.Hour}
	for i, want := range []bool{true, true, false} {
		w, err := sc.take(p, "k", time.Now(), 1)
		require.NoError(t, err)
		require.Equal(t, want, w.Allowed, "take %d", i+1)
	}
}

// BenchmarkSocketTake is BenchmarkTake's take asked of a server process
// over a unix socket (go test -run '^$' -bench 'Take' -cpu 2
// ./internal/shmtable/ runs both).
func BenchmarkSocketTake(b *testing.B) {
	for _, nkeys := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", nkeys), func(b *testing.B) {
			path := startSocketServer(b)
			p := ratelimit.Policy{Name: "default", Limit: 1 << 30, Window: time.Minute}
			now := time.Now()
			c, err := net.Dial("unix", path)
			require.NoError(b, err)
			fill := &socketClient{c: c}
			var buf [32]byte
			for i := range nkeys {
				_, err := fill.take(p, string(benchKey(buf[:0], i)), now, 1)
				require.NoError(b, err)
			}
			c.Close()
			var seq atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("unix", path)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				sc := &socketClient{c: c}
				var buf [32]byte
				i := seq.Add(7919)
				for pb.Next() {
					i += 7919
					k := benchKey(buf[:0], int(i%uint64(nkeys)))
					if _, err := sc.take(p, unsafe.String(&k[0], len(k)), now, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
