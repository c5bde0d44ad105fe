package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/session/serve/servetest"
)

// TestForeignServerHelper is the forged server servetest.Foreign runs as another user; it
// does nothing in a normal test run.
func TestForeignServerHelper(t *testing.T) { servetest.ForeignServerMain() }

// TestCommandsRefuseAnotherUsersServer: with no XDG_RUNTIME_DIR (SSH, cron, Slurm), another
// user made $TMPDIR/diffsim-UID first and serves forged scores there. score says so in one line
// and prints the score it computed itself, never the forged one.
func TestCommandsRefuseAnotherUsersServer(t *testing.T) {
	tmp, err := os.MkdirTemp("", "diffsim-tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o1777)
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("DIFFSIM_SOCKET", "")
	servetest.Foreign(t, serve.SocketPath()) // skips unless root
	code, out, stderr := runCmd(t, "score", imgA, imgB, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rec struct{ Score float64 }
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Score == servetest.ForgedScore {
		t.Fatalf("score printed the forged score %v", rec.Score)
	}
	if !strings.Contains(stderr, "belongs to uid 65534, not to you") || !strings.HasSuffix(stderr, "; computing here\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line saying whose folder it is and that the score was computed here", stderr)
	}
	code, out, _ = runCmd(t, "doctor")
	if !strings.Contains(out, "not used: the socket folder") {
		t.Errorf("doctor (exit %d) does not say the server is not used:\n%s", code, out)
	}
}

// TestServeRefusesUnsafeSetups: serve does not remove what --socket names unless it is a
// socket, and does not listen where other machines reach it unless told to.
func TestServeRefusesUnsafeSetups(t *testing.T) {
	dir, err := os.MkdirTemp("", "diffsim-serve")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "notes.txt")
	os.WriteFile(file, []byte("keep me"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"serve", "--socket", file}, 1, "exists and is not a socket but a file; diffsim serve removes only sockets"},
		{[]string{"serve", "--socket", filepath.Join(dir, "s.sock"), "--http", "0.0.0.0:0"}, 2, "other machines could reach the API"},
		{[]string{"serve", "--socket", filepath.Join(dir, "t.sock"), "--allow-remote"}, 2, "--allow-remote is for --http"},
		{[]string{"serve", "--socket", filepath.Join(dir, "u.sock"), "--allow-origin", "http://x.example/"}, 2, "no path"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.says) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", tc.args, code, stderr, tc.code, tc.says)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("--socket's file is now %q, %v", b, err)
	}
}

// TestStoppedServer: a server stopped with SIGSTOP before a command is passed over in one line
// (the command computes itself); one stopped during a long request fails it in one line once no
// heartbeat comes for DIFFSIM_SERVER_STALL, instead of waiting forever.
func TestStoppedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a server")
	}
	if !cgoEnabled {
		t.Skip("built without cgo: the binary would have no ONNX Runtime")
	}
	bin := buildDiffsim(t)
	sock := servetest.Socket(t)
	srv := exec.Command(bin, "serve", "--socket", sock, "--quiet")
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(syscall.SIGCONT); srv.Process.Kill(); srv.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := api.Dial(context.Background(), sock, ""); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not answer in 60 s: %s", srvErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("DIFFSIM_SOCKET", sock)
	t.Setenv("DIFFSIM_SERVER_STALL", "2s")
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(120 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("diffsim %v still running after 120 s", args)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}

	// A long sweep (a hundred forwards): stop the server while it runs.
	type result struct {
		code        int
		out, stderr string
	}
	res := make(chan result, 1)
	go func() {
		code, out, stderr := run("sweep", imgA, imgB, "--t", "0:999:10", "--json")
		res <- result{code, out, stderr}
	}()
	waitServer(t, sock, func(m api.ModelsResponse) bool { return m.Active > 0 })
	if err := srv.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.code != 1 || !strings.Contains(r.stderr, "answered no heartbeat for 2s while computing (stopped with SIGSTOP, or stuck)") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("sweep across a stop: exit %d, stderr %q; want exit 1 and one line saying the server stopped answering", r.code, r.stderr)
	}

	// Still stopped: the next command does not wait on it.
	code, out, stderr := run("score", imgA, imgB)
	if code != 0 || !strings.Contains(out, "aas ") || !strings.Contains(stderr, "does not answer") || !strings.Contains(stderr, "computing here") {
		t.Errorf("score with the server stopped: exit %d, %q %q; want the score computed here and one line why", code, out, stderr)
	}
}

// waitServer polls the server on sock until cond holds of its models, for at most a minute.
func waitServer(t *testing.T, sock string, cond func(api.ModelsResponse) bool) {
	t.Helper()
	c := api.NewClient(sock)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := c.Models(ctx)
		cancel()
		if err == nil && cond(m) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not reach the state in 60 s (last: %+v, %v)", m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
