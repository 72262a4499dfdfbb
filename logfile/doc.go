// Package logfile writes log lines to files that are safe to keep in
// production: [File] is an append-only file that rotates by size and time,
// gzips the old files in the background, prunes them by count and age,
// follows its path when the file or its directory is deleted or moved, and
// reopens on SIGHUP; [BufferedWriter] batches writes to it off the request
// path. Both count what they could not write (Dropped) instead of losing it
// silently, and report it to slog ([WithLogger]).
//
//	f, err := logfile.Open("/var/log/app/access.log",
//		logfile.WithMaxSize(100<<20), logfile.WithRotateEvery(24*time.Hour),
//		logfile.WithMaxBackups(14))
//	if err != nil {
//		return err
//	}
//	defer f.Close()
//	bw, err := logfile.NewBufferedWriter(f)
//	if err != nil {
//		return err
//	}
//	defer bw.Close() // runs before f.Close: everything buffered is written
//	logger := slog.New(accesslog.NewCombinedHandler(bw, nil))
//
// Both constructors take the same [Option] type; each option belongs to
// one of them ([WithLogger] to both), and one given to the other
// constructor is an error, as is every out-of-range value: nothing is
// silently replaced by a default.
//
// A File loses nothing when the process is killed (each Write is one
// write(2)); a BufferedWriter loses what it holds, up to its buffer size
// and flush interval: see "What a crash loses" under each. Under cluster's
// supervisor, the supervisor owns the file (cluster.WithLog) and the
// workers write through cluster.LogWriter, which loses nothing either and
// costs no more than a BufferedWriter.
//
// Examples: [ExampleOpen], [ExampleNewBufferedWriter].
package logfile
