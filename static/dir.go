package static

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Dir returns the directory at path as an [fs.FS] confined to it with an
// [os.Root]: no name resolves outside the directory, whether through
// "..", an absolute path or a symbolic link (links that stay inside are
// followed), and on Windows reserved device names are refused.
//
// A hard link is not a way out that os.Root can see: it is the file
// itself under a second name, not a path that leads elsewhere. Whoever
// can create files in the directory can link into it any file of the
// same file system they may link (on Linux with fs.protected_hardlinks=1,
// the usual default, files they own or may read and write), and a
// [Server] serves it like any other. Keep the directory writable only by
// whoever deploys the files.
//
// A [Server] opens the files of a Dir without blocking (O_NONBLOCK, then
// fstat on the descriptor), so a FIFO or socket renamed over a served
// file is refused, never waited on. That holds for the file
// system as Dir returns it; wrapped (fs.Sub, a counting wrapper), it is
// an fs.FS like any other ([New] says what that costs).
//
// The directory is opened once: a later rename or a symlink swap of path
// itself (a "current → release-N" deploy) is not followed. Files inside
// it may change at any time; a [Server] notices.
func Dir(path string) (fs.FS, error) {
	if path == "" {
		return nil, errors.New("static: Dir: empty path")
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("static: Dir: %w", err)
	}
	rfs, ok := root.FS().(rootFS)
	if !ok {
		root.Close()
		return nil, errors.New("static: Dir: os.Root.FS lacks Stat, ReadFile, ReadDir or ReadLink")
	}
	return &dirFS{root: root, fs: rfs}, nil
}

// rootFS is what the file system of an os.Root implements.
type rootFS interface {
	fs.StatFS
	fs.ReadFileFS
	fs.ReadDirFS
	fs.ReadLinkFS
}

// dirFS is the file system Dir returns: os.Root's, and the Root itself,
// through which a Server opens files with a flag fs.FS has no room for.
type dirFS struct {
	root *os.Root
	fs   rootFS
}

func (d *dirFS) Open(name string) (fs.File, error)          { return d.fs.Open(name) }
func (d *dirFS) Stat(name string) (fs.FileInfo, error)      { return d.fs.Stat(name) }
func (d *dirFS) Lstat(name string) (fs.FileInfo, error)     { return d.fs.Lstat(name) }
func (d *dirFS) ReadLink(name string) (string, error)       { return d.fs.ReadLink(name) }
func (d *dirFS) ReadFile(name string) ([]byte, error)       { return d.fs.ReadFile(name) }
func (d *dirFS) ReadDir(name string) ([]fs.DirEntry, error) { return d.fs.ReadDir(name) }

// errNotRegular reports a name that is not a regular file: a FIFO,
// socket, device or directory.
var errNotRegular = errors.New("static: not a regular file")

// openRegular opens name for reading when it is a regular file and
// returns it with its fstat information; errNotRegular otherwise. It
// never blocks: open(2) of a FIFO without O_NONBLOCK waits for a writer
// (no deadline, no cancellation, and an OS thread held meanwhile), and
// the check is made on the opened descriptor, so a FIFO renamed over the
// file after any earlier stat is caught as well.
func (d *dirFS) openRegular(name string) (*os.File, fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := d.root.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err == nil {
		err = setBlocking(f)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Compile-time check that a dirFS keeps what os.Root's file system
// offers, links included (throughHidden needs them).
var _ rootFS = (*dirFS)(nil)
