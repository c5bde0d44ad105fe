package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/diffsim/diffsim/api"
)

// makeSocketDir creates the folder of a socket (mode 0700) when it is missing, then checks it
// (api.CheckSocketDir): a folder that is not this user's alone is refused.
func makeSocketDir(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return fmt.Errorf("socket folder: %w", err)
		}
		// Mkdir, not MkdirAll: a folder that appears meanwhile is someone else's and fails the
		// check below rather than being taken as ours.
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("socket folder: %w", err)
		}
	}
	return api.CheckSocketDir(dir)
}
