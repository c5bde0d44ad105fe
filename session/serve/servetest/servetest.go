// Package servetest starts a real `diffsim serve` for tests of its clients (the CLI, the
// explorer): a server on a Unix socket in a private folder, stopped when the test ends.
package servetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/session/serve"
)

// Socket is a path for a Unix socket in a fresh folder under the system's temporary
// directory, removed when the test ends. Not t.TempDir(): socket paths are limited to about
// 108 bytes, and test names make those folders long.
func Socket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "diffsim-serve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// Start serves srv on a new socket until the test ends and returns the socket's path; a
// Serve that ends with an error fails the test.
func Start(t testing.TB, srv *serve.Server) string {
	t.Helper()
	sock := Socket(t)
	ln, err := serve.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}
