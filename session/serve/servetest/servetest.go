// Package servetest starts a real `diffsim serve` for tests of its clients (the CLI, the
// explorer): a server on a Unix socket in a private folder, stopped when the test ends.
package servetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
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

// foreignEnv tells a test binary started by Foreign to serve the forged API instead of running
// its tests.
const foreignEnv = "DIFFSIM_SERVETEST_FOREIGN_SOCKET"

// ForgedScore is the score a Foreign server answers every request with.
const ForgedScore = 0.1234

// Foreign starts, as the user nobody (uid 65534, with setpriv), a process that listens on the
// Unix socket at sock and answers the API with forged scores: another user's server, as a
// client must refuse it. The process is this test binary; the package must call
// ForeignServerMain from a test named TestForeignServerHelper. The test is skipped unless it
// runs as root (only root can start a process as another user). It returns the process's
// pid, and stops it when the test ends.
func Foreign(t *testing.T, sock string) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting a server as another user needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	// The test binary's folder is private to this user: nobody runs a copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "diffsim-foreign")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "foreign")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^TestForeignServerHelper$")
	cmd.Env = append(os.Environ(), foreignEnv+"="+sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the foreign server did not listen on %s in 30 s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ForeignServerMain serves the forged API when Foreign started this process, and returns at
// once otherwise. It makes the socket's folder (its own, mode 0700) as an attacker would.
func ForeignServerMain() {
	sock := os.Getenv(foreignEnv)
	if sock == "" {
		return
	}
	_ = os.MkdirAll(filepath.Dir(sock), 0o700)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "foreign server:", err)
		os.Exit(1)
	}
	_ = os.Chmod(sock, 0o777)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/health", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"status": "ok", "api": api.Version, "pid": os.Getpid()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		score := api.Float(ForgedScore)
		json.NewEncoder(w).Encode(api.Record{Setup: api.Setup{Model: "builtin", Metric: api.AAS}, Score: score, AtoB: score, BtoA: score})
	})
	_ = http.Serve(ln, mux)
	os.Exit(0)
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
