package sshserve

// Tests of the parts that need no SSH client and no runtime: the session's command line,
// the folders' confinement, uploads and their quota, keys, and the session limits.

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui/termgfx"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    request
		wantErr string
	}{
		{nil, request{t: -1, metric: "aas"}, ""},
		{[]string{"a.png", "b.png"}, request{a: "a.png", b: "b.png", t: -1, metric: "aas"}, ""},
		{[]string{"a.png", "b.png", "--t", "401", "--layer", "Up0", "--metric", "cos", "--graphics", "halfblock"},
			request{a: "a.png", b: "b.png", t: 401, tSet: true, layer: "Up0", metric: "cos", graphics: termgfx.HalfBlock}, ""},
		{[]string{"--step", "600", "a.png", "b.png"}, request{a: "a.png", b: "b.png", t: -1, step: 600, metric: "aas"}, ""},
		{[]string{"help"}, request{t: -1, metric: "aas", help: true}, ""},
		{[]string{"a.png", "--help"}, request{t: -1, metric: "aas", help: true}, ""},
		{[]string{"a.png"}, request{}, "give two images (or none"},
		{[]string{"a", "b", "c"}, request{}, "not 3"},
		{[]string{"a", "b", "--t", "1", "--step", "2"}, request{}, "--t or --step"},
		{[]string{"a", "b", "--metric", "l2"}, request{}, `--metric "l2"`},
		{[]string{"a", "b", "--graphics", "ascii"}, request{}, `--graphics "ascii"`},
		{[]string{"a", "b", "--model", "sd15"}, request{}, "unknown flag: --model"},
	} {
		got, err := parseArgs(tc.args)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseArgs(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("parseArgs(%q): %v", tc.args, err)
		case got != tc.want:
			t.Errorf("parseArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestRequestOptions(t *testing.T) {
	info := api.ModelInfo{Timesteps: true, Layers: []api.Layer{{Name: "a"}, {Name: "b", Short: "Up0"}}, DefaultLayer: 1, DefaultT: 101}
	opts, err := request{step: 600, metric: "mse"}.options(info)
	if err != nil || opts.T != 401 || opts.Metric != api.MSE || opts.Layer != 1 {
		t.Errorf("--step 600 --metric mse: %+v, %v; want t 401, mse, the default layer", opts, err)
	}
	opts, err = request{layer: "a", metric: "aas"}.options(info)
	if err != nil || opts.T != 101 || opts.Layer != 0 {
		t.Errorf("--layer a: %+v, %v; want the default t and layer 0", opts, err)
	}
	if _, err := (request{t: 1000, tSet: true}).options(info); err == nil {
		t.Error("--t 1000 was taken")
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"a.png", "a.png", ""},
		{"sub/./a.png", "sub/a.png", ""},
		{"sub/../a.png", "a.png", ""},
		{"..", "", "leaves the images folder"},
		{"../a.png", "", "leaves the images folder"},
		{"sub/../../a.png", "", "leaves the images folder"},
		{"/etc/passwd", "", "absolute paths are not served"},
		{"~/a.png", "", "absolute paths are not served"},
		{"", "", "no image named"},
	} {
		got, err := cleanName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("cleanName(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// writeImage writes a small PNG (a real image, as the checks decode).
func writeImage(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writePNG(t, path, 20, 10, false)
}

// testLibrary has an images folder (a.png, sub/b.png, a link inside and one leading out) and
// an uploads folder; quota bytes per user.
func testLibrary(t *testing.T, quota int64) (*library, string) {
	t.Helper()
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	writeImage(t, filepath.Join(images, "a.png"))
	writeImage(t, filepath.Join(images, "sub", "b.png"))
	writeImage(t, filepath.Join(dir, "secret.png"))
	writeImage(t, filepath.Join(images, ".hidden.png"))
	if err := os.Symlink("a.png", filepath.Join(images, "alias.png")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret.png"), filepath.Join(images, "out.png")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(images, "up")); err != nil {
		t.Fatal(err)
	}
	l, err := newLibrary(images, filepath.Join(dir, "uploads"), quota)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

func TestLibraryConfines(t *testing.T) {
	l, _ := testLibrary(t, 1<<20)
	u, err := l.user("k1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, err string }{
		{"a.png", ""},
		{"sub/b.png", ""},
		{"alias.png", ""}, // a link that stays inside
		{"out.png", "leaves the images folder (it is a link to a file outside)"},
		{"up/secret.png", "leaves the images folder"},
		{"../secret.png", "leaves the images folder"},
		{"sub", "a folder, not an image file"},
		{"nope.png", "no such image"},
	} {
		img, err := u.Load(tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Load(%q) = %v; want an error with %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || img.W != 20 || img.Path != tc.name {
			t.Errorf("Load(%q) = %+v, %v", tc.name, img, err)
		}
	}
	items, err := u.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	// Links to files are listed (opening decides); hidden files and linked folders are not.
	if got := strings.Join(names, " "); got != "a.png alias.png out.png sub/b.png" {
		t.Errorf("List = %q", got)
	}
}

func TestUploadsShadowAndCheck(t *testing.T) {
	l, dir := testLibrary(t, 1<<20)
	u, err := l.user("k1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.user("k2")
	if err != nil {
		t.Fatal(err)
	}
	upload := func(u *userFiles, name, src string) error {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		in, err := u.receive(name)
		if err != nil {
			return err
		}
		if _, err := in.Write(data); err != nil {
			in.abort()
			return err
		}
		return in.Close()
	}
	big := filepath.Join(dir, "big.png")
	writePNG(t, big, 64, 48, false)
	if err := upload(u, "a.png", big); err != nil {
		t.Fatal(err)
	}
	if img, err := u.Load("a.png"); err != nil || img.W != 64 {
		t.Errorf("the user's a.png does not come before the served one: %+v, %v", img, err)
	}
	if img, err := other.Load("a.png"); err != nil || img.W != 20 {
		t.Errorf("another user sees the first one's upload: %+v, %v", img, err)
	}
	items, _ := u.List()
	if len(items) == 0 || items[0].Name != "a.png" || items[0].Note != "yours" {
		t.Errorf("List does not start with the user's own a.png: %+v", items)
	}
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello"), 0o644)
	for _, tc := range []struct{ name, src, err string }{
		{"notes.png", text, "notes.png was not kept: not a PNG"},
		{"notes.txt", big, "give uploads an image name"},
		{"../escape.png", big, "leaves the images folder"},
		{"/abs.png", big, ""}, // SFTP paths are absolute from the user's folder: this is abs.png
		{"nofolder/x.png", big, "no such file"},
	} {
		err := upload(u, tc.name, tc.src)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("upload %s: %v, want %q", tc.name, err, tc.err)
		}
	}
	if _, err := os.Stat(filepath.Join(u.own, "notes.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file that is not an image was kept: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(l.uploads, ".incoming")); len(left) != 0 {
		t.Errorf("%d temporary files left", len(left))
	}
	if len(l.q.pending) != 0 {
		t.Errorf("quota reservations left: %v", l.q.pending)
	}
}

// TestQuotaConcurrent: uploads in flight reserve their bytes, so two that each fit alone but
// not together cannot both be kept.
func TestQuotaConcurrent(t *testing.T) {
	l, _ := testLibrary(t, 10_000)
	u, _ := l.user("k1")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	ins := make([]*incoming, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := u.receive(fmt.Sprintf("f%d.png", i))
			if err != nil {
				errs[i] = err
				return
			}
			ins[i] = in
			_, errs[i] = in.WriteAt(make([]byte, 3000), 0)
		}()
	}
	wg.Wait()
	refused := 0
	for i, err := range errs {
		if err != nil && strings.Contains(err.Error(), "upload quota reached") {
			refused++
		}
		if ins[i] != nil {
			ins[i].abort()
		}
	}
	if refused != 5 {
		t.Errorf("%d of 8 uploads of 3 kB in flight refused under a 10 kB quota, want 5 (errors %v)", refused, errs)
	}
	if len(l.q.pending) != 0 {
		t.Errorf("reservations left after the uploads ended: %v", l.q.pending)
	}
}

func TestHostKeyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "ssh_host_ed25519_key")
	k1, err := hostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v, %v; want 0600", st.Mode(), err)
	}
	k2, err := hostKey(path)
	if err != nil || Fingerprint(k1.PublicKey()) != Fingerprint(k2.PublicKey()) {
		t.Errorf("a second start made another host key (%v)", err)
	}
	os.Chmod(path, 0o644)
	if _, err := hostKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a host key others can read was used: %v", err)
	}
}

func TestAuthorized(t *testing.T) {
	dir := t.TempDir()
	key := func() gossh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := gossh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	in, out := key(), key()
	path := filepath.Join(dir, "authorized_keys")
	content := "# the class\n\nnot a key line\n" + string(gossh.MarshalAuthorizedKey(in))
	os.WriteFile(path, []byte(content), 0o600)
	if ok, err := authorized(path, in); !ok || err != nil {
		t.Errorf("a listed key: %v, %v", ok, err)
	}
	if ok, _ := authorized(path, out); ok {
		t.Error("a key not listed was let in")
	}
	if n, _ := countKeys(path); n != 1 {
		t.Errorf("countKeys = %d, want 1", n)
	}
}

func TestAdmitLimits(t *testing.T) {
	s := &Server{cfg: Config{MaxSessions: 3, PerKey: 2}, perKey: map[string]int{}}
	r1, err := s.admit("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("a"); err == nil || !strings.Contains(err.Error(), "your key already has 2 sessions open") {
		t.Errorf("a third session of one key: %v", err)
	}
	if _, err := s.admit("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("c"); err == nil || !strings.Contains(err.Error(), "the server is full (3 sessions") {
		t.Errorf("past the maximum: %v", err)
	}
	r1()
	r1() // releasing twice frees one place only
	if _, err := s.admit("c"); err != nil {
		t.Errorf("a freed place was not reused: %v", err)
	}
	if _, err := s.admit("d"); err == nil {
		t.Error("a double release freed two places")
	}
}

func TestTermEnv(t *testing.T) {
	got := termEnv([]string{"COLORTERM=truecolor", "TMUX=/tmp/x", "LC_TERMINAL=iTerm2", "PATH=/evil", "LANG=C.UTF-8"}, "xterm-kitty")
	want := "TERM=xterm-kitty COLORTERM=truecolor LC_TERMINAL=iTerm2 LANG=C.UTF-8"
	if strings.Join(got, " ") != want {
		t.Errorf("termEnv = %q, want %q", got, want)
	}
}
