package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shipshape-go/shipshape/connlimit"
)

// The tests run real processes: the test binary re-executes itself as the
// program under test when envProgram is set, and TestMain then runs
// programMain instead of the tests. The supervisor started by a test
// re-executes the same binary (with the same environment) for its workers.
const envProgram = "CLUSTER_TEST_PROGRAM"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envProgram); mode != "" {
		os.Exit(programMain(mode))
	}
	goleak.VerifyTestMain(m)
}

// programMain is the main function of the test program. Its settings come
// from CLUSTER_TEST_* environment variables so that every test can shape
// it.
func programMain(mode string) int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if v := os.Getenv("CLUSTER_TEST_LOG_PID"); v != "" {
		logger = logger.With("pid", v) // the program's own attribute, as a service might add
	}
	ctx := context.Background()
	switch mode {
	case "serve", "run", "service":
		if _, worker := WorkerID(); worker {
			switch os.Getenv("CLUSTER_TEST_BROKEN") {
			case "exit": // a release that fails at start (bad config, say)
				fmt.Fprintln(os.Stderr, "test program: broken on purpose")
				return 3
			case "hang": // a release that never becomes ready
				time.Sleep(time.Hour)
			}
			if os.Getenv("CLUSTER_TEST_CHILD") != "" {
				logChild(logger)
			}
		}
		opts := []Option{WithLogger(logger), WithAddr(envOr("CLUSTER_TEST_NETWORK", "tcp"), envOr("CLUSTER_TEST_ADDR", "127.0.0.1:0"))}
		if v := os.Getenv("CLUSTER_TEST_WORKERS"); v != "" {
			n, _ := strconv.Atoi(v)
			opts = append(opts, WithWorkers(n))
		}
		if v := os.Getenv("CLUSTER_TEST_BACKOFF"); v != "" {
			opts = append(opts, WithRestartBackoff(envDuration("CLUSTER_TEST_BACKOFF"), 8*envDuration("CLUSTER_TEST_BACKOFF")))
		}
		if v := os.Getenv("CLUSTER_TEST_CRASHLOOP"); v != "" {
			n, _ := strconv.Atoi(v)
			opts = append(opts, WithCrashLoop(n, time.Minute))
		}
		if v := os.Getenv("CLUSTER_TEST_SHUTDOWN"); v != "" {
			opts = append(opts, WithShutdownTimeout(envDuration("CLUSTER_TEST_SHUTDOWN")))
		}
		if v := os.Getenv("CLUSTER_TEST_READY"); v != "" {
			opts = append(opts, WithReadyTimeout(envDuration("CLUSTER_TEST_READY")))
		}
		if v := os.Getenv("CLUSTER_TEST_MEMORY"); v != "" {
			n, _ := strconv.ParseInt(v, 10, 64)
			opts = append(opts, WithMemoryLimit(n))
		}
		switch os.Getenv("CLUSTER_TEST_LISTENER") {
		case "error":
			opts = append(opts, WithListener(func(net.Listener) (net.Listener, error) {
				return nil, errors.New("test program: no listener for you")
			}))
		case "nil":
			opts = append(opts, WithListener(func(net.Listener) (net.Listener, error) { return nil, nil }))
		}
		if os.Getenv("CLUSTER_TEST_ONE_CONN_PER_IP") != "" {
			opts = append(opts, WithListener(func(ln net.Listener) (net.Listener, error) {
				return connlimit.New(ln, connlimit.WithMaxConnsPerIP(1))
			}))
		}
		if v := os.Getenv("CLUSTER_TEST_ADMIN_ADDR"); v != "" {
			opts = append(opts, WithNamedAddr("admin", "tcp", v))
		}
		if v := os.Getenv("CLUSTER_TEST_CONTROL"); v != "" {
			opts = append(opts, WithControl(v))
		}
		var err error
		switch mode {
		case "serve":
			if path := os.Getenv("CLUSTER_TEST_OPEN_FILE"); path != "" {
				// The pattern ServeFunc replaces: the service opens its
				// files before Serve, in every process.
				f, err := openMarker(path)
				if err != nil {
					logger.Error("test program: open", "error", err.Error())
					return 1
				}
				defer f.Close()
			}
			err = Serve(ctx, testServer(), opts...)
		case "service":
			err = ServeFunc(ctx, func(ctx context.Context) (*Service, error) {
				svc := &Service{Server: testServer()}
				if path := os.Getenv("CLUSTER_TEST_OPEN_FILE"); path != "" {
					f, err := openMarker(path)
					if err != nil {
						return nil, err
					}
					svc.Close = f.Close
				}
				if os.Getenv("CLUSTER_TEST_ADMIN_ADDR") != "" {
					admin := http.NewServeMux()
					admin.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
						id, _ := WorkerID()
						fmt.Fprintf(w, "%d %d admin\n", os.Getpid(), id)
					})
					svc.Servers = map[string]*http.Server{"admin": {Handler: admin, ReadHeaderTimeout: 5 * time.Second}}
				}
				return svc, nil
			}, opts...)
		default:
			err = Run(ctx, func(ctx context.Context, ln net.Listener) error {
				return http.Serve(ln, testHandler())
			}, opts...)
		}
		if err != nil {
			logger.Error("test program: exiting", "error", err.Error())
			return 1
		}
		return 0

	case "ctl": // a control client: CLUSTER_TEST_CONTROL, the command in CLUSTER_TEST_CTL
		err := ControlCommand(ctx, os.Getenv("CLUSTER_TEST_CONTROL"), strings.Fields(os.Getenv("CLUSTER_TEST_CTL")), os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0

	case "crash": // the crash monitor's program: crash_program_test.go
		return crashProgram(logger)

	case "logs": // the log sink's program: logsink_program_unix_test.go
		return logProgram(logger)

	case "limits": // the shared limits table's program: sharedstore_program_unix_test.go
		return limitsProgram(logger)

	case "listen": // an independent process on a shared port
		ln, err := Listen(ctx, "tcp", os.Getenv("CLUSTER_TEST_ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "test program:", err)
			return 1
		}
		fmt.Println("listening")
		// Drain on SIGTERM the way Serve does, so that a comparison with
		// the supervisor differs only in how the socket is shared.
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
		defer stop()
		c, _ := newConfig(nil)
		if err := httpServe(&http.Server{Handler: testHandler()}, c)(ctx, ln); err != nil {
			fmt.Fprintln(os.Stderr, "test program:", err)
			return 1
		}
		return 0

	case "single": // one plain process, for the throughput comparison
		ln, err := net.Listen("tcp", envOr("CLUSTER_TEST_ADDR", "127.0.0.1:0"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "test program:", err)
			return 1
		}
		logger.Info("cluster: supervisor started", slog.Group("cluster", "addr", ln.Addr().String(), "gomaxprocs", runtime.GOMAXPROCS(0)))
		_ = http.Serve(ln, testHandler())
		return 0
	}
	fmt.Fprintln(os.Stderr, "test program: unknown mode", mode)
	return 2
}

// testServer is the test program's server: testHandler, over TLS with
// the certificate of CLUSTER_TEST_TLS_CERT and _KEY when they are set.
func testServer() *http.Server {
	srv := &http.Server{Handler: testHandler(), ReadHeaderTimeout: 5 * time.Second}
	if cert := os.Getenv("CLUSTER_TEST_TLS_CERT"); cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, os.Getenv("CLUSTER_TEST_TLS_KEY"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "test program:", err)
			os.Exit(1)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}}
	}
	return srv
}

// openMarker opens path for appending and writes this process's pid to
// it: the file stands for a log file or a pool the service opens.
func openMarker(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// logChild starts a child process the way main might before Serve, and
// logs what its descriptors point to, what this worker's descriptors 3-5
// point to, and the cluster variables the child inherited.
func logChild(logger *slog.Logger) {
	cmd := exec.Command("sleep", "60") // stdin, stdout and stderr: /dev/null
	if err := cmd.Start(); err != nil {
		logger.Error("test program: child", "error", err.Error())
		return
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	ents, err := os.ReadDir(proc + "/fd")
	if err != nil {
		logger.Error("test program: child", "error", err.Error())
		return
	}
	var fds, own []string
	for _, e := range ents {
		target, _ := os.Readlink(proc + "/fd/" + e.Name())
		fds = append(fds, target)
	}
	for _, fd := range []string{"3", "4", "5"} { // what the supervisor passes
		target, _ := os.Readlink("/proc/self/fd/" + fd)
		own = append(own, target)
	}
	environ, _ := os.ReadFile(proc + "/environ")
	var vars []string
	for kv := range strings.SplitSeq(string(environ), "\x00") {
		if strings.HasPrefix(kv, "SHIPSHAPE_CLUSTER_") {
			vars = append(vars, kv)
		}
	}
	logger.Info("test program: child", "fds", strings.Join(fds, " "), "own", strings.Join(own, " "),
		"vars", strings.Join(vars, " "))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDuration(k string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(k))
	return d
}

// memoryHeld keeps what /alloc allocated alive.
var memoryHeld [][]byte

// testHandler answers "/" with "<pid> <worker id> <incarnation> <proto>", "/slow?d=2s" with the
// headers at once and the body after d, "/alloc?mb=N" by allocating and
// touching N MiB that stay allocated, and "/hello" with a short text.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, _ := WorkerID()
		inc, _ := WorkerIncarnation()
		fmt.Fprintf(w, "%d %d %d %s\n", os.Getpid(), id, inc, r.Proto)
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("Hello, World!\n"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		fmt.Fprintf(w, "%d started\n", os.Getpid())
		http.NewResponseController(w).Flush()
		time.Sleep(d)
		fmt.Fprintln(w, "done")
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // touch every page so that it counts in the resident set
		}
		memoryHeld = append(memoryHeld, b)
		fmt.Fprintf(w, "%d\n", os.Getpid())
	})
	return mux
}
