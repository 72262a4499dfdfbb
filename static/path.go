package static

import (
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"
)

// cleanPath turns a request path (as decoded in URL.Path) into a name in
// the file system. It reports false for paths that must never be served,
// before any file system access:
//
//   - a segment starting with '.': hidden files and directories (.env,
//     .git/config), and "." or ".." (no traversal, even one that would
//     stay inside the root);
//   - NUL and other control characters, backslashes (a separator on
//     Windows), invalid UTF-8 (overlong encodings of '.' or '/');
//   - names that are not local on this system (Windows device names such
//     as NUL or COM1, volume names).
//
// Empty segments ("a//b") are collapsed.
func cleanPath(p string) (name string, ok bool) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if strings.Contains(p, "/.") || !utf8.ValidString(p) {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < ' ' || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	name = path.Clean(p)[1:]
	if name == "" {
		return ".", true
	}
	if !fs.ValidPath(name) || !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", false
	}
	return name, true
}

// isServerError reports whether a file system error is the server's
// problem (out of file descriptors or memory, an I/O error) rather than a
// property of the requested name. Everything else (missing, permission,
// not a directory, a symlink escaping the root, a loop) is a 404: the
// client learns nothing about what is on disk.
func isServerError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EIO, syscall.ENOBUFS, syscall.EAGAIN, syscall.EINTR:
		return true
	}
	return false
}

// maxLinks bounds symbolic link resolution, as the kernel's ELOOP does.
const maxLinks = 40

// throughHidden reports whether resolving name follows a symbolic link to
// a hidden file or directory ("docs/cfg" → "../.git/config"), or to a
// target that leaves the file system. os.Root keeps links inside the
// root but does not know that hidden names are off limits. File systems
// without links (embed.FS, fstest.MapFS) are never through hidden names.
func throughHidden(fsys fs.FS, name string) (bool, error) {
	rl, ok := fsys.(fs.ReadLinkFS)
	if !ok || name == "." {
		return false, nil
	}
	parts := strings.Split(name, "/")
	done := "" // resolved, link-free prefix
	for links := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		switch {
		case p == "" || p == ".":
			continue
		case p == "..":
			if done == "" {
				return true, nil
			}
			if done = path.Dir(done); done == "." {
				done = ""
			}
			continue
		case strings.HasPrefix(p, "."):
			return true, nil
		}
		next := path.Join(done, p)
		fi, err := rl.Lstat(next)
		if err != nil {
			return false, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxLinks {
			return true, nil
		}
		target, err := rl.ReadLink(next)
		if err != nil {
			return false, err
		}
		if path.IsAbs(target) || filepath.IsAbs(target) {
			return true, nil
		}
		parts = append(strings.Split(filepath.ToSlash(target), "/"), parts...)
	}
	return false, nil
}
