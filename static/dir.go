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
// The directory is opened once: a later rename or a symlink swap of path
// itself (a "current → release-N" deploy) is not followed. Files inside
// it may change at any time; a [Server] notices.
func Dir(path string) (fs.FS, error) {
	if path == "" {
		return nil, errors.New("static: dir path is empty")
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("static: open dir: %w", err)
	}
	return root.FS(), nil
}
