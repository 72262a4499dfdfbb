//go:build unix

package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/logfile"
)

// logProgram is the test program of the log sink (mode "logs"): a
// supervisor with an access log and an application log (WithLog) in
// CLUSTER_TEST_LOGDIR, whose workers serve /req?id=N (answered "ok <pid>"
// and logged by accesslog), /app?id=N (an application record at warn
// level) and /hello. With CLUSTER_TEST_LOG_MODE=files it is the set-up
// without the sink instead: every worker writes its own access-<id>.log
// through a File and a BufferedWriter, as programs did before WithLog.
// With CLUSTER_TEST_LOG_DIE_WRITING set, every worker stops in the middle
// of a record of its application log at start, as if killed then.
func logProgram(logger *slog.Logger) int {
	dir := os.Getenv("CLUSTER_TEST_LOGDIR")
	workers, _ := strconv.Atoi(envOr("CLUSTER_TEST_WORKERS", "2"))
	maxSize, _ := strconv.ParseInt(envOr("CLUSTER_TEST_LOG_MAXSIZE", "0"), 10, 64)
	perWorker := os.Getenv("CLUSTER_TEST_LOG_MODE") == "files"
	opts := []Option{WithLogger(logger), WithAddr("tcp", envOr("CLUSTER_TEST_ADDR", "127.0.0.1:0")),
		WithWorkers(workers), WithRestartBackoff(10*time.Millisecond, 100*time.Millisecond),
		WithCrashLoop(1000, time.Minute)}
	if !perWorker {
		opts = append(opts,
			WithLog("access", filepath.Join(dir, "access.log"), logfile.WithMaxSize(maxSize)),
			WithLog("app", filepath.Join(dir, "app.log")))
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	if id, ok := WorkerID(); ok {
		h, closeLogs, err := logWorker(id, dir, maxSize, perWorker)
		if err != nil {
			logger.Error("test program: worker", "error", err.Error())
			return 1
		}
		defer closeLogs()
		srv.Handler = h
	}
	if err := Serve(context.Background(), srv, opts...); err != nil {
		logger.Error("test program: exiting", "error", err.Error())
		return 1
	}
	return 0
}

// logWorker builds a worker's handler on its logs.
func logWorker(id int, dir string, maxSize int64, perWorker bool) (http.Handler, func(), error) {
	var access, app io.Writer
	closeLogs := func() {}
	if perWorker {
		f, err := logfile.Open(filepath.Join(dir, fmt.Sprintf("access-%d.log", id)), logfile.WithMaxSize(maxSize))
		if err != nil {
			return nil, nil, err
		}
		bw, err := logfile.NewBufferedWriter(f)
		if err != nil {
			return nil, nil, err
		}
		access, app = bw, io.Discard
		closeLogs = func() { bw.Close(); f.Close() }
	} else {
		var ok1, ok2 bool
		access, ok1 = LogWriter("access")
		app, ok2 = LogWriter("app")
		if !ok1 || !ok2 {
			return nil, nil, fmt.Errorf("LogWriter: access %v, app %v in a worker", ok1, ok2)
		}
	}
	appLog := slog.New(slog.NewJSONHandler(app, nil)).With(WorkerAttr())
	appLog.Info("test program: worker serving")
	if os.Getenv("CLUSTER_TEST_LOG_DIE_WRITING") != "" {
		// What a kill in the middle of a copy leaves; nothing can be
		// written to the app log after it.
		appLog.Info("test program: before the interrupted record")
		app.(*ringWriter).w.DieWriting(300)
	}
	mw, err := accesslog.New(slog.New(accesslog.NewCombinedHandler(access, nil)))
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/req", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %d\n", os.Getpid())
	})
	mux.HandleFunc("/app", func(w http.ResponseWriter, r *http.Request) {
		appLog.WarnContext(r.Context(), "test program: app record", "id", r.URL.Query().Get("id"))
		fmt.Fprintf(w, "ok %d\n", os.Getpid())
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("Hello, World!\n"))
	})
	return mw(mux), closeLogs, nil
}
