package serve

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffsim/diffsim/api"
)

// StateDir is diffsim's state folder: $XDG_STATE_HOME/diffsim, else ~/.local/state/diffsim.
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "diffsim")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "diffsim-state-"+fmt.Sprint(os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "diffsim")
}

// TokenPath is the file holding the bearer token that requests from other machines carry
// (--http with --allow-remote).
func TokenPath() string { return filepath.Join(StateDir(), "serve-token") }

// Token returns the bearer token in path, making one (256 random bits, hex) when the file does
// not exist; created says so, for the server to print it that once. The file is this user's
// alone (mode 0600, in a folder of mode 0700); a token file others can read is refused, since
// anyone who read it could use the server.
func Token(path string) (token string, created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("token folder: %w", err)
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("the token file %s has mode %#o, readable by others: make a new one (rm %s) or chmod 600 it", path, fi.Mode().Perm(), path)
		}
		if uid, ok := api.OwnerOf(fi); !ok || uid != os.Getuid() {
			return "", false, fmt.Errorf("the token file %s belongs to uid %d, not to you; remove it", path, uid)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", false, fmt.Errorf("the token file %s holds no usable token (%d characters); remove it to make a new one", path, len(tok))
		}
		return tok, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", false, fmt.Errorf("token: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("token: %w", err)
	}
	return tok, true, nil
}
