// Package cluster runs a Go HTTP service as several processes on one port:
// independent processes that share the port through SO_REUSEPORT
// ([Listen]), or a supervisor embedded in the binary that starts one worker
// process per core, restarts the ones that crash, replaces the ones that
// grow too big and upgrades them one at a time on SIGHUP without dropping a
// connection ([Serve] and [Run]).
//
// Go already uses every core inside one process, so the point of several
// processes is not throughput: it is that a fatal error, an out-of-memory
// kill or a runaway heap takes down one worker and not the service, and
// that a new release can replace the workers while the port keeps
// answering.
//
// Supervised, in main:
//
//	func main() {
//		srv := &http.Server{Handler: routes(), ReadHeaderTimeout: 10 * time.Second}
//		err := cluster.Serve(context.Background(), srv,
//			cluster.WithAddr("tcp", ":8080"),
//			cluster.WithWorkers(4),           // default: GOMAXPROCS
//			cluster.WithMemoryLimit(512<<20), // replace a worker above 512 MiB
//			cluster.WithShutdownTimeout(20*time.Second),
//		)
//		if err != nil {
//			log.Fatal(err) // a crash loop: exit non-zero, let systemd take over
//		}
//	}
//
// The process you start becomes the supervisor: it opens the socket and
// re-executes its own binary once per worker; in those workers the same
// Serve call serves srv on the socket it was handed. Everything main does
// before Serve runs in the supervisor too; [ServeFunc] takes a function
// that builds the service (servers, and what to close after them) in the
// workers only, so that log files, pools and clients are never opened by
// the supervisor, and serves more than one address ([WithNamedAddr]: an
// admin port). A server with a TLSConfig is served over TLS, with HTTP/2.
// Signals go to the supervisor:
//
//   - SIGTERM or SIGINT: every worker stops taking connections, finishes
//     its requests (within the shutdown timeout) and exits; then the
//     supervisor exits 0. A second signal kills the workers at once (any
//     further one is ignored).
//   - SIGHUP: rolling restart. One worker at a time, a new worker is started
//     from the binary now on disk at the same path, and the old one is
//     drained once the new one is ready. If the new one does not become
//     ready, the old one stays and the restart stops there. Deploy by
//     renaming the new binary over the old path (or switching a symlink),
//     then send SIGHUP.
//
// With [WithControl] the supervisor also answers on a unix socket, for its
// own user and root: [Control] and [ControlCommand] show every worker
// (id, incarnation, pid, state, uptime, restarts, last exit, RSS), reload,
// stop, and scale to another number of workers, as "pm2 ls", "pm2
// reload" and "pm2 scale" do.
//
// Each worker has a stable id, [WorkerID] (0 to N-1, kept by a
// replacement: shard by it), and an incarnation unique per process,
// [WorkerIncarnation] (for what one process owns: a file, a lock).
//
// # Why no connection is dropped
//
// The supervisor owns the only listening socket and gives every worker a
// duplicate of it, so all workers take connections from one accept queue.
// A worker that stops leaves the connections still queued to the others;
// with one SO_REUSEPORT socket per worker the kernel would reset them
// (unless net.ipv4.tcp_migrate_req=1). And a draining worker stops
// accepting first, turns keep-alives off and waits until its connections
// are idle before it calls http.Server.Shutdown, because Shutdown closes,
// without an answer, a connection whose first request arrives after it
// began.
//
// # Platforms
//
// The supervisor needs a Unix system; it has been tested on Linux. Workers
// die with it through the parent-death signal on Linux and FreeBSD and
// through a pipe everywhere. RSS sampling for [WithMemoryLimit] reads
// /proc and is Linux only. [Listen] balances connections on Linux
// (SO_REUSEPORT) and FreeBSD (SO_REUSEPORT_LB); on macOS, Windows and the
// other systems it returns an error wrapping [errors.ErrUnsupported], and
// on Windows so do [Run] and [Serve].
//
// # Crash reports
//
// The supervisor is its workers' crash monitor. Every worker sends the
// runtime's crash output to a pipe the supervisor holds
// (runtime/debug.SetCrashOutput, set as the worker starts) and its
// standard error through the supervisor, which passes it on unchanged.
// When a worker ends abnormally (an unrecovered panic in any goroutine, a
// fatal error such as concurrent map writes, a fatal signal, an OOM kill,
// an exit of its own) or the supervisor replaces it over its memory cap,
// the supervisor builds one [Crash]: worker id, pid, exit status, uptime,
// [Reason], the runtime's first line and every goroutine's stack parsed
// into frames, with the crashing goroutine and the in-app culprit
// identified. It logs it ("cluster: worker crashed") and hands it to the
// [WithCrashHandler] function, which sentryreport's ReportCrash turns
// into a Sentry event. A drain, a rolling restart and a stop report
// nothing. None of it runs on a request's path.
//
// # One log file for the service
//
// With [WithLog] the supervisor is the one writer of a log file (the
// access log, the application's records): one path, one rotation, one
// compression and retention, whatever the number of workers and
// replacements. Workers write through [LogWriter], a copy into memory
// the supervisor shares with them and drains into the file, so a line is
// safe once Write returned: a worker killed with kill -9, by a fatal
// error or by the OOM killer loses no line of the requests it answered,
// where a [logfile.BufferedWriter] in the worker loses what it holds (up
// to a second). [WorkerAttr] makes each application record say which
// worker and process wrote it. Outside a supervised worker LogWriter
// reports false, and the program opens its own file.
//
// # Shared limits
//
// The supervisor shares one table of rate-limit counts with its workers
// ([WithSharedKeys]), and in a worker ratelimit.New and slowdown.New
// without WithStore count in it: a limit is the service's, exact across
// workers, and kept through kill -9, replacements and rolling restarts.
// [SharedStore] returns it for limiters meant to share counts; a process
// without a supervisor keeps a MemoryStore per limiter.
//
// # Configuration and logs
//
// Every option has a documented default and refuses what it cannot honour:
// an invalid value, a nil Option, a nil logger or listener function, and
// a nil context, serve function or server, are errors from [Run], [Serve]
// or [Listen] before anything starts. The supervisor logs worker starts,
// exits, restarts and replacements through [WithLogger] (slog.Default()
// unless set), every attribute in the group "cluster" (cluster.worker,
// cluster.pid, …), so that the program's own attributes keep their names;
// WithLogger lists every message and key.
//
// Examples: [ExampleServe], [ExampleServeFunc], [ExampleServe_tls],
// [ExampleRun], [ExampleListen], [ExampleWorkerID],
// [ExampleWorkerIncarnation], [ExampleWithListener],
// [ExampleWithCrashHandler], [ExampleWithLog], [ExampleControlCommand],
// [ExampleControl], [ExampleWithSharedKeys], [ExampleSharedStore].
package cluster
