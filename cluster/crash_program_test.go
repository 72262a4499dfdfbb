package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"
)

// crashProgram is the test program of the crash monitor's tests: a
// supervisor whose crash handler logs every report it gets ("test
// program: crash handler", the Crash without its Output), and workers that
// crash on request (/crash?kind=…) or, with CLUSTER_TEST_CRASH_AT_START,
// at once. CLUSTER_TEST_WORKERS, CLUSTER_TEST_MEMORY, CLUSTER_TEST_READY,
// CLUSTER_TEST_CRASHLOOP, CLUSTER_TEST_CGROUP (a cgroup directory for the
// workers, through the unexported test hook) and CLUSTER_TEST_STDERR_LINES
// (a JSON line on stderr per request) shape it.
func crashProgram(logger *slog.Logger) int {
	if _, worker := WorkerID(); worker {
		switch os.Getenv("CLUSTER_TEST_CRASH_AT_START") {
		case "panic":
			crashAtStart()
		case "hang":
			crashHang()
		}
	}
	opts := []Option{
		WithLogger(logger),
		WithAddr("tcp", "127.0.0.1:0"),
		WithRestartBackoff(10*time.Millisecond, 80*time.Millisecond),
		WithCrashHandler(func(c Crash) {
			n := len(c.Output)
			c.Output = "" // up to 4 MiB: more than a line of the harness
			logger.Info("test program: crash handler", "crash", c, "output_bytes", n)
		}),
	}
	if v := os.Getenv("CLUSTER_TEST_WORKERS"); v != "" {
		n, _ := strconv.Atoi(v)
		opts = append(opts, WithWorkers(n))
	}
	if v := os.Getenv("CLUSTER_TEST_CRASHLOOP"); v != "" {
		n, _ := strconv.Atoi(v)
		opts = append(opts, WithCrashLoop(n, time.Minute))
	}
	if v := os.Getenv("CLUSTER_TEST_MEMORY"); v != "" {
		n, _ := strconv.ParseInt(v, 10, 64)
		opts = append(opts, WithMemoryLimit(n))
	}
	if v := os.Getenv("CLUSTER_TEST_READY"); v != "" {
		opts = append(opts, WithReadyTimeout(envDuration("CLUSTER_TEST_READY")))
	}
	if dir := os.Getenv("CLUSTER_TEST_CGROUP"); dir != "" {
		opts = append(opts, func(c *config) { c.workerCgroup = dir })
	}
	mux := http.NewServeMux()
	mux.Handle("/", testHandler())
	mux.HandleFunc("/crash", crashOnRequest)
	var h http.Handler = mux
	if os.Getenv("CLUSTER_TEST_STDERR_LINES") != "" {
		// A service that logs every request to stderr: the one case in
		// which the supervisor has work while a worker serves.
		stderr := slog.New(slog.NewJSONHandler(os.Stderr, nil))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r)
			stderr.Info("http request", "path", r.URL.Path, "status", 200, "duration", time.Microsecond)
		})
	}
	err := Serve(context.Background(), &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, opts...)
	if err != nil {
		logger.Error("test program: exiting", "error", err.Error())
		return 1
	}
	return 0
}

// crashOnRequest answers, then crashes the worker the way kind says.
func crashOnRequest(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	if kind == "alloc" {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		crashAlloc(mb)
	}
	fmt.Fprintf(w, "%d %s\n", os.Getpid(), kind)
	http.NewResponseController(w).Flush()
	switch kind {
	case "goroutine":
		go crashPanicGoroutine()
	case "mapwrites":
		crashConcurrentMapWrites()
	case "exit":
		crashExit()
	}
}

// The functions that crash are named, so that the tests can check the
// culprit of each report.

func crashPanicGoroutine() {
	panic("test program: a plain goroutine panics")
}

func crashConcurrentMapWrites() {
	// The runtime sees two writers only if they run at once: with one P
	// (a machine or cgroup of one CPU, where GOMAXPROCS is 1) the writers
	// take turns and the map survives. More Ps than CPUs make the kernel
	// interrupt one writer mid-write, and the next one sees it.
	runtime.GOMAXPROCS(8)
	m := map[int]int{}
	for range 4 {
		go crashMapWriter(m)
	}
}

func crashMapWriter(m map[int]int) {
	for i := 0; ; i++ {
		m[i%1024] = i
	}
}

func crashExit() { os.Exit(3) }

// crashHeld keeps what crashAlloc allocated alive.
var crashHeld [][]byte

func crashAlloc(mb int) {
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // touch every page: it counts in the resident set
		}
		crashHeld = append(crashHeld, b)
	}
}

func crashAtStart() {
	panic("test program: crash at start")
}

func crashHang() {
	time.Sleep(time.Hour)
}
