package cluster_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/shipshape-go/shipshape/accesslog"
	"github.com/shipshape-go/shipshape/cluster"
	"github.com/shipshape-go/shipshape/logfile"
)

// WithLog in main: the supervisor owns one access log and one application
// log for the whole service; the workers write to them through LogWriter,
// and a worker killed with kill -9 loses none of the lines it wrote. The
// same main, run without a supervisor (LogWriter reports false), writes
// its own files.
func ExampleWithLog() {
	open := func(name, path string) (io.Writer, func()) {
		if w, ok := cluster.LogWriter(name); ok {
			return w, func() {} // the supervisor's file: nothing to close
		}
		f, err := logfile.Open(path)
		if err != nil {
			log.Fatal(err)
		}
		bw, err := logfile.NewBufferedWriter(f) // kill -9 loses up to a second here
		if err != nil {
			log.Fatal(err)
		}
		return bw, func() { bw.Close(); f.Close() }
	}

	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	if _, worker := cluster.WorkerID(); worker {
		access, closeAccess := open("access", "/var/log/app/access.log")
		defer closeAccess()
		app, closeApp := open("app", "/var/log/app/app.log")
		defer closeApp()
		// Each application record says which worker and process wrote it.
		logger := slog.New(slog.NewJSONHandler(app, nil)).With(cluster.WorkerAttr())
		slog.SetDefault(logger)

		mw, err := accesslog.New(slog.New(accesslog.NewCombinedHandler(access, nil)))
		if err != nil {
			log.Fatal(err)
		}
		srv.Handler = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			slog.InfoContext(r.Context(), "hello", "path", r.URL.Path)
			_, _ = io.WriteString(w, "hello\n")
		}))
	}
	err := cluster.Serve(context.Background(), srv,
		cluster.WithAddr("tcp", ":8080"),
		cluster.WithLog("access", "/var/log/app/access.log",
			logfile.WithMaxSize(100<<20), logfile.WithRotateEvery(24*time.Hour), logfile.WithMaxBackups(14)),
		cluster.WithLog("app", "/var/log/app/app.log", logfile.WithMaxBackups(7)),
		cluster.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil))),
	)
	if err != nil {
		log.Fatal(err)
	}
}
