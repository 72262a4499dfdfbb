// Package logfile writes log lines to files that are safe to keep in
// production: [File] is an append-only file that rotates by size and time,
// gzips the old files in the background, prunes them by count and age,
// follows its path when the file or its directory is deleted or moved, and
// reopens on SIGHUP; [BufferedWriter] batches writes to it off the request
// path. Both count what they could not write (Dropped) instead of losing it
// silently.
//
//	f, err := logfile.OpenFile("/var/log/app/access.log",
//		logfile.WithMaxSize(100<<20), logfile.WithRotateEvery(24*time.Hour),
//		logfile.WithMaxBackups(14))
//	if err != nil {
//		return err
//	}
//	defer f.Close()
//	bw := logfile.NewBufferedWriter(f)
//	defer bw.Close() // runs before f.Close: everything buffered is written
//	logger := slog.New(accesslog.NewCombinedHandler(bw, nil))
package logfile
