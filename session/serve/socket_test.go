package serve_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/serve"
	"github.com/diffsim/diffsim/session/serve/servetest"
)

// TestForeignServerHelper is the forged server servetest.Foreign runs as another user; it
// does nothing in a normal test run.
func TestForeignServerHelper(t *testing.T) { servetest.ForeignServerMain() }

// privateDir is a fresh folder of this user's with mode 0700, outside t.TempDir (whose long
// names do not fit a socket path).
func privateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "diffsim-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestSocketFolderMustBeOurs: a socket folder that is a link, or open to other users, is
// refused by the server (it does not start) and by the client (it computes itself).
func TestSocketFolderMustBeOurs(t *testing.T) {
	base := privateDir(t)
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o755)
	link := filepath.Join(base, "link")
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	os.Symlink(real, link)
	for _, tc := range []struct {
		name, dir, says string
	}{
		{"open to others", open, "mode 0755, open to other users"},
		{"a symbolic link", link, "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(tc.dir, "serve.sock")
			if ln, err := serve.ListenUnix(sock); err == nil {
				ln.Close()
				t.Fatal("the server listened in an unsafe folder")
			} else if !errors.Is(err, api.ErrUnsafeSocket) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("ListenUnix: %v, want ErrUnsafeSocket saying %q", err, tc.says)
			}
		})
	}
	// A live server whose folder was opened up later is not used either.
	dir := privateDir(t)
	sock := filepath.Join(dir, "serve.sock")
	ln, err := serve.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(dir, 0o711)
	if _, err := api.Dial(context.Background(), sock, ""); !errors.Is(err, api.ErrUnsafeSocket) {
		t.Errorf("Dial in a folder of mode 0711: %v, want ErrUnsafeSocket", err)
	}
}

// TestSocketPathThatIsNotASocket: --socket naming a file, a folder or a link is refused and
// left exactly as it was.
func TestSocketPathThatIsNotASocket(t *testing.T) {
	dir := privateDir(t)
	file := filepath.Join(dir, "notes.txt")
	os.WriteFile(file, []byte("keep me"), 0o600)
	folder := filepath.Join(dir, "folder")
	os.Mkdir(folder, 0o700)
	link := filepath.Join(dir, "link")
	os.Symlink(file, link)
	for _, p := range []string{file, folder, link} {
		ln, err := serve.ListenUnix(p)
		if err == nil {
			ln.Close()
			t.Fatalf("ListenUnix(%s) listened", p)
		}
		if !strings.Contains(err.Error(), "exists and is not a socket") {
			t.Errorf("ListenUnix(%s): %v", p, err)
		}
		if _, err := api.Dial(context.Background(), p, ""); err == nil || errors.Is(err, api.ErrNoServer) {
			t.Errorf("Dial(%s): %v, want it refused as not a socket", p, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("the file is now %q, %v", b, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link is gone or changed: %v", err)
	}
	if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
		t.Errorf("the folder is gone: %v", err)
	}
}

// TestAnotherUsersServerIsRefused: with no XDG_RUNTIME_DIR (SSH, cron, Slurm), the default
// socket's folder is $TMPDIR/diffsim-UID. Another user who made it first, and serves forged
// scores there, is refused by the client (the folder is not ours) and the server does not start
// there. A socket of another user's server moved into a folder of ours is refused too: the
// kernel's peer credentials name the server's user, whatever it answers.
func TestAnotherUsersServerIsRefused(t *testing.T) {
	tmp := privateDir(t)
	os.Chmod(tmp, 0o1777) // like /tmp: anyone may make a folder in it
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("DIFFSIM_SOCKET", "")
	sock := serve.SocketPath()
	if filepath.Dir(filepath.Dir(sock)) != tmp {
		t.Fatalf("default socket %s is not under TMPDIR %s", sock, tmp)
	}
	servetest.Foreign(t, sock) // skips unless root

	_, err := api.Dial(context.Background(), sock, "")
	if !errors.Is(err, api.ErrUnsafeSocket) || !strings.Contains(err.Error(), "belongs to uid 65534, not to you") {
		t.Errorf("Dial to the squatted folder: %v, want ErrUnsafeSocket naming uid 65534", err)
	}
	if ln, err := serve.ListenUnix(sock); err == nil {
		ln.Close()
		t.Error("the server listened in another user's folder")
	} else if !errors.Is(err, api.ErrUnsafeSocket) {
		t.Errorf("ListenUnix in the squatted folder: %v, want ErrUnsafeSocket", err)
	}

	// The same server's socket, moved into a folder of ours (root can): the folder passes,
	// the peer does not.
	mine := filepath.Join(privateDir(t), "serve.sock")
	if err := os.Rename(sock, mine); err != nil {
		t.Fatal(err)
	}
	_, err = api.Dial(context.Background(), mine, "")
	if !errors.Is(err, api.ErrUnsafeSocket) || !strings.Contains(err.Error(), "runs as uid 65534") {
		t.Errorf("Dial to another user's server in our folder: %v, want ErrUnsafeSocket naming uid 65534", err)
	}
	// Not even a request that skips Dial reaches it.
	c := api.NewClient(mine)
	if _, err := c.Score(context.Background(), api.ScoreRequest{ImageA: "/a.png", ImageB: "/b.png"}); !errors.Is(err, api.ErrUnsafeSocket) {
		t.Errorf("Score through NewClient: %v, want ErrUnsafeSocket", err)
	}
}
