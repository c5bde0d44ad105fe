package sshserve

// End-to-end tests with the real OpenSSH client (Debian's openssh-client: ssh, scp, sftp,
// ssh-keygen), against a server in this process on the real built-in model. Interactive
// sessions run in tmux, whose capture shows the client's screen; the rest read ssh's output.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/ui/termtest"
)

// testSize keeps the built-in model's forwards quick under CI's load.
const testSize = 128

// The tests run the real `diffsim serve --ssh` (built once, with cgo, without the race
// detector): what users run, measured as a process (its RSS), and Bubble Tea's own shutdown
// race in its input reader (cancelreader closes a pipe its reader goroutine may still poll
// when a program is killed) stays out of this package's race-detector runs.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// diffsimBinary builds diffsim once for the package's tests.
func diffsimBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "diffsim-ssh-test"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "diffsim")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/diffsim/diffsim")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// needOpenSSH skips without the OpenSSH client, except in CI, where scripts/test.sh installs
// it (openssh-client), so a missing one fails.
func needOpenSSH(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ssh", "scp", "sftp", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed: scripts/test.sh installs openssh-client in CI", tool)
			}
			t.Skipf("%s not installed (apt-get install openssh-client)", tool)
		}
	}
}

// fixture is a running `diffsim serve --ssh` with one user key and an images folder holding
// two sample photos.
type fixture struct {
	t      *testing.T
	bin    string
	cmd    *exec.Cmd
	env    []string
	port   string
	sock   string
	dir    string
	state  string
	key    string // the user's private key (listed in authorized_keys)
	ak     string
	images string
	logMu  sync.Mutex
	log    bytes.Buffer
}

func newFixture(t *testing.T, flags ...string) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("runs OpenSSH against diffsim serve on the built-in model")
	}
	needOpenSSH(t)
	// The runtime rule first: without cgo or a library this skips (or fails in CI).
	spec := api.DefaultSpec()
	spec.Size = testSize
	probe, err := session.Open(t.Context(), session.Options{Families: families.All(), Spec: spec})
	enginetest.Check(t, err)
	probe.Close()

	f := &fixture{t: t, bin: diffsimBinary(t), dir: t.TempDir()}
	f.state = filepath.Join(f.dir, "state")
	f.key = f.keygen("student")
	pub, err := os.ReadFile(f.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f.ak = filepath.Join(f.dir, "authorized_keys")
	if err := os.WriteFile(f.ak, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	f.images = filepath.Join(f.dir, "images")
	if err := os.Mkdir(f.images, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"chelsea.png", "coffee.png"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "samples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.images, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sockDir, err := os.MkdirTemp("", "dss") // socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	f.sock = filepath.Join(sockDir, "s.sock")
	f.env = append(os.Environ(), "DIFFSIM_STATE="+f.state, "DIFFSIM_SOCKET="+f.sock, "DIFFSIM_GRAPH_CACHE=off")
	args := []string{"serve", "--ssh", "127.0.0.1:0", "--images", f.images, "--size", strconv.Itoa(testSize)}
	if !slices.Contains(flags, "--ssh-open") {
		args = append(args, "--authorized-keys", f.ak)
	}
	args = append(args, flags...)
	f.cmd = exec.Command(f.bin, args...)
	f.cmd.Env = f.env
	f.cmd.Stderr = (*fixtureLog)(f)
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = f.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		f.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
			if err := exitErr; err != nil {
				t.Errorf("diffsim serve after Ctrl-C: %v", err)
			}
		case <-time.After(time.Minute):
			f.cmd.Process.Kill()
			t.Errorf("diffsim serve did not stop within a minute of Ctrl-C")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", f.logText())
		}
	})
	addr := regexp.MustCompile(`explorer over SSH on 127\.0\.0\.1:(\d+)`)
	deadline := time.Now().Add(time.Minute)
	for {
		if m := addr.FindStringSubmatch(f.logText()); m != nil {
			f.port = m[1]
			break
		}
		select {
		case <-exited:
			t.Fatalf("diffsim serve exited: %v\n%s", exitErr, f.logText())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("diffsim serve did not start:\n%s", f.logText())
		}
	}
	return f
}

// fixtureLog collects the server's stderr.
type fixtureLog fixture

func (l *fixtureLog) Write(p []byte) (int, error) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return l.log.Write(p)
}

func (f *fixture) logText() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.log.String()
}

// keygen makes an Ed25519 key pair with ssh-keygen and returns the private key's path.
func (f *fixture) keygen(name string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
		f.t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return p
}

// opts are the client options every test uses: no configuration or known hosts of the
// machine's, no prompts, this key only.
func (f *fixture) opts(key string) []string {
	return []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", key}
}

// sshLine is the shell command that opens a session with args, then prints its exit status.
func (f *fixture) sshLine(key string, args ...string) string {
	all := append(append(f.opts(key), "-p", f.port, "localhost", "-t"), args...)
	return "ssh " + strings.Join(all, " ") + "; echo EXIT=$?"
}

// run runs ssh (or scp, sftp) to completion and returns its combined output and exit status.
func (f *fixture) run(env []string, name string, args ...string) (string, int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	f.t.Fatalf("%s: %v %s", name, err, out)
	return "", -1
}

// score is what `diffsim score` (answered by the running server) says of a pair in the
// images folder, as the explorer shows it.
func (f *fixture) score(a, b, layer string, t int) string {
	f.t.Helper()
	abs := func(n string) string {
		if filepath.IsAbs(n) {
			return n
		}
		return filepath.Join(f.images, n)
	}
	args := []string{"score", abs(a), abs(b), "--size", strconv.Itoa(testSize), "--t", strconv.Itoa(t), "--json"}
	if layer != "" {
		args = append(args, "--layer", layer)
	}
	cmd := exec.Command(f.bin, args...)
	cmd.Env = f.env
	out, err := cmd.Output()
	if err != nil {
		f.t.Fatalf("diffsim score: %v %s", err, out)
	}
	var rec struct{ Score float64 }
	if err := json.Unmarshal(out, &rec); err != nil {
		f.t.Fatalf("diffsim score --json: %v: %s", err, out)
	}
	return fmt.Sprintf("AAS %.4f", rec.Score)
}

// models is what the server has loaded (GET /v1/models).
func (f *fixture) models() api.ModelsResponse {
	f.t.Helper()
	r, err := api.NewClient(f.sock).Models(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// rss is the server's resident memory in bytes.
func (f *fixture) rss() int64 {
	f.t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.cmd.Process.Pid))
	if err != nil {
		f.t.Skip("no /proc: cannot read the server's memory")
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	f.t.Fatal("no VmRSS")
	return 0
}

// sessions is how many explorer sessions the server's log shows open.
func (f *fixture) sessions() int {
	log := f.logText()
	return strings.Count(log, "diffsim ssh: session ") - strings.Count(log, "diffsim ssh: closed ") - strings.Count(log, "diffsim ssh: dropped ")
}

// waitSessions waits until the server counts n open sessions.
func (f *fixture) waitSessions(n int, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for f.sessions() != n {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d sessions open, want %d", f.sessions(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newTmux(t *testing.T, cols, rows int) *termtest.Tmux {
	tm := termtest.NewTmux(t, cols, rows)
	tm.Wait = 2 * time.Minute // the first forward, under the race detector and CI's load
	return tm
}

// TestExplorerOverSSH is the check: from a second terminal, ssh -t chelsea.png
// coffee.png shows the explorer with the server's score (equal to diffsim score on the pair);
// changing the layer and t shows their scores; q quits and leaves the client's shell usable.
func TestExplorerOverSSH(t *testing.T) {
	f := newFixture(t)
	tm := newTmux(t, 100, 30)
	tm.Run(f.sshLine(f.key, "chelsea.png", "coffee.png"))
	want := f.score("chelsea.png", "coffee.png", "", 101)
	s := tm.WaitFor(want, func(s string) bool {
		return strings.Contains(s, want) && strings.Contains(s, "ready") && strings.Contains(s, "t 101")
	})
	loaded := f.models()
	if !strings.Contains(s, "ssh") || !strings.Contains(s, "chelsea.png") {
		t.Errorf("the status line does not say ssh, or the title lacks the image:\n%s", s)
	}
	tm.Keys("J")
	want = f.score("chelsea.png", "coffee.png", "coarse.attn", 101)
	tm.WaitFor("the coarse layer's "+want, func(s string) bool { return strings.Contains(s, "coarse.attn") && strings.Contains(s, want) })
	tm.Keys(".")
	want = f.score("chelsea.png", "coffee.png", "coarse.attn", 111)
	tm.WaitFor("t 111's "+want, func(s string) bool { return strings.Contains(s, "t 111") && strings.Contains(s, want) })
	// A resize of the client's window reaches the explorer: at 120 columns the score panel
	// has room to spell out the metric's direction.
	if strings.Contains(s, "higher = more similar") {
		t.Fatalf("at 100 columns the panel already spells out the direction:\n%s", s)
	}
	tm.Resize(120, 36)
	tm.WaitFor("the layout for 120×36", func(s string) bool {
		return strings.Contains(s, "higher = more similar") && len(strings.Split(strings.TrimRight(s, "\n"), "\n")) >= 34
	})
	tm.Keys("q")
	tm.WaitFor("the session's end", func(s string) bool { return strings.Contains(s, "EXIT=0") })
	if tm.AltScreen() {
		t.Error("the client's terminal is still in the alternate screen after q")
	}
	f.waitSessions(0, 10*time.Second)
	if now := f.models(); len(now.Models) != 1 || len(loaded.Models) != 1 || !now.Models[0].LoadedAt.Equal(loaded.Models[0].LoadedAt) {
		t.Errorf("the server loaded the model more than once (diffsim score and the session share it): %+v, then %+v", loaded, now)
	}
}

// TestRefusals: a key not listed and a password get nothing; paths that leave the images
// folder (.., absolute, a symlink out) and a session without a terminal are refused with one
// line.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	stranger := f.keygen("stranger")
	out, code := f.run(nil, "ssh", append(f.opts(stranger), "-tt", "-p", f.port, "localhost", "chelsea.png", "coffee.png")...)
	if code != 255 || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("a key not in authorized_keys: exit %d, %q; want 255, permission denied", code, out)
	}

	// A password, typed by an askpass program: the server offers no password method, so
	// the client never asks for one.
	asked := filepath.Join(f.dir, "asked")
	askpass := filepath.Join(f.dir, "askpass")
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\ntouch "+asked+"\necho hunter2\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
		"-o", "NumberOfPasswordPrompts=1", "-p", f.port, "localhost", "chelsea.png", "coffee.png"}
	out, code = f.run([]string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0"}, "ssh", args...)
	if code != 255 || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("a password: exit %d, %q; want 255, permission denied (publickey)", code, out)
	}
	if _, err := os.Stat(asked); err == nil {
		t.Error("the client was asked for a password: the server offered password authentication")
	}
	// A client that sends a password anyway.
	_, err := gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", f.port), &gossh.ClientConfig{
		User: "student", Auth: []gossh.AuthMethod{gossh.Password("hunter2")}, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("a password sent anyway: %v, want unable to authenticate", err)
	}

	if err := os.Symlink(filepath.Join(f.dir, "authorized_keys"), filepath.Join(f.images, "escape.png")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"../authorized_keys", "coffee.png"}, "../authorized_keys: leaves the images folder"},
		{[]string{"chelsea.png", "sub/../../authorized_keys"}, "leaves the images folder"},
		{[]string{"/etc/passwd", "coffee.png"}, "/etc/passwd: absolute paths are not served"},
		{[]string{"escape.png", "coffee.png"}, "escape.png: leaves the images folder (it is a link to a file outside)"},
		{[]string{"missing.png", "coffee.png"}, "missing.png: no such image"},
		{[]string{"chelsea.png"}, "give two images"},
		{[]string{"chelsea.png", "coffee.png", "--metric", "l2"}, `--metric "l2"`},
	} {
		out, code := f.run(nil, "ssh", append(append(f.opts(f.key), "-tt", "-p", f.port, "localhost"), tc.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 2 || !strings.Contains(out, tc.want) || len(lines) != 1 {
			t.Errorf("ssh … %s: exit %d, %q; want exit 2 and one line with %q", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
	out, code = f.run(nil, "ssh", append(f.opts(f.key), "-T", "-p", f.port, "localhost", "chelsea.png", "coffee.png")...)
	if code != 2 || !strings.Contains(out, "needs a terminal") {
		t.Errorf("no terminal: exit %d, %q; want 2 and the explorer needs a terminal", code, out)
	}
	if strings.Contains(f.logText(), "session ") {
		t.Errorf("a refused request opened a session:\n%s", f.logText())
	}
	f.waitSessions(0, 10*time.Second)
}

// writePNG writes a w×h PNG; noisy pixels make it large.
func writePNG(t *testing.T, path string, w, h int, noisy bool) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(7)
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255}
			if noisy {
				seed = seed*1664525 + 1013904223
				c = color.RGBA{uint8(seed >> 24), uint8(seed >> 16), uint8(seed >> 8), 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUploadThenOpen: scp (its SFTP protocol and the legacy one) uploads an image into the
// user's folder, which then opens by name beside the served images; a file that is not an
// image, or over the quota, is refused and leaves nothing behind.
func TestUploadThenOpen(t *testing.T) {
	f := newFixture(t, "--upload-quota", "200000")
	mine := filepath.Join(f.dir, "mine.png")
	writePNG(t, mine, 96, 64, false)
	notImage := filepath.Join(f.dir, "notes.png")
	if err := os.WriteFile(notImage, []byte("not a picture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(f.dir, "big.png")
	writePNG(t, big, 300, 300, true) // about 270 kB of noise: over the quota

	scp := func(legacy bool, src, dst string) (string, int) {
		args := append(f.opts(f.key), "-P", f.port)
		if legacy {
			args = append(args, "-O")
		}
		return f.run(nil, "scp", append(args, src, "localhost:"+dst)...)
	}
	if out, code := scp(false, mine, ""); code != 0 {
		t.Fatalf("scp mine.png: exit %d: %s", code, out)
	}
	if out, code := scp(true, mine, "again.png"); code != 0 {
		t.Fatalf("scp -O mine.png again.png: exit %d: %s", code, out)
	}
	if out, code := scp(false, notImage, ""); code == 0 {
		t.Errorf("scp of a file that is not an image succeeded: %s", out)
	}
	if out, code := scp(true, notImage, ""); code == 0 || !strings.Contains(out, "notes.png was not kept") {
		t.Errorf("scp -O of a file that is not an image: exit %d, %q; want a failure saying it was not kept", code, out)
	}
	if out, code := scp(true, big, ""); code == 0 || !strings.Contains(out, "upload quota reached") {
		t.Errorf("scp -O over the quota: exit %d, %q; want the quota's refusal", code, out)
	}
	if out, code := scp(false, big, ""); code == 0 {
		t.Errorf("scp over the quota succeeded: %s", out)
	}
	pub, err := os.ReadFile(f.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := gossh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	uploads := filepath.Join(f.state, "uploads")
	own := filepath.Join(uploads, keyID(pk))
	entries, _ := os.ReadDir(own)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "again.png mine.png" {
		t.Errorf("the user's folder holds %q, want again.png and mine.png only", names)
	}
	if left, _ := os.ReadDir(filepath.Join(uploads, ".incoming")); len(left) != 0 {
		t.Errorf("%d half-received uploads left behind", len(left))
	}
	batch := filepath.Join(f.dir, "batch")
	os.WriteFile(batch, []byte("ls\nrm again.png\nls\n"), 0o600)
	out, code := f.run(nil, "sftp", append(f.opts(f.key), "-b", batch, "-P", f.port, "localhost")...)
	if code != 0 || strings.Count(out, "again.png") != 2 || strings.Count(out, "mine.png") != 2 {
		t.Errorf("sftp ls, rm again.png, ls: exit %d:\n%s", code, out)
	}

	tm := newTmux(t, 100, 30)
	tm.Run(f.sshLine(f.key, "mine.png", "coffee.png"))
	want := f.score(filepath.Join(own, "mine.png"), "coffee.png", "", 101)
	tm.WaitFor(want, func(s string) bool { return strings.Contains(s, want) && strings.Contains(s, "mine.png") })
	tm.Keys("q")
	tm.WaitFor("the session's end", func(s string) bool { return strings.Contains(s, "EXIT=0") })
}

// TestTwentySessions: twenty clients explore the same pair on one model at once; the model
// loads once, every session shows the score, and each extra session's memory is reported.
func TestTwentySessions(t *testing.T) {
	const n = 20
	f := newFixture(t, "--ssh-per-key", strconv.Itoa(n), "--ssh-max-sessions", strconv.Itoa(n))
	want := f.score("chelsea.png", "coffee.png", "", 101)
	shows := func(s string) bool { return strings.Contains(s, want) && strings.Contains(s, "ready") }
	tms := make([]*termtest.Tmux, n)
	tms[0] = newTmux(t, 80, 24)
	tms[0].Run(f.sshLine(f.key, "chelsea.png", "coffee.png"))
	tms[0].WaitFor("the first session's score", shows)
	loaded := f.models()
	one := f.rss()
	for i := 1; i < n; i++ {
		tms[i] = newTmux(t, 80, 24)
		tms[i].Run(f.sshLine(f.key, "chelsea.png", "coffee.png"))
	}
	for i := range tms {
		tms[i].WaitFor(fmt.Sprintf("session %d's score", i+1), shows)
	}
	all := f.rss()
	if got := f.sessions(); got != n {
		t.Errorf("%d sessions open, want %d", got, n)
	}
	if now := f.models(); len(now.Models) != 1 || !now.Models[0].LoadedAt.Equal(loaded.Models[0].LoadedAt) {
		t.Errorf("the model was loaded again for %d sessions: %+v, then %+v", n, loaded, now)
	}
	t.Logf("RSS with 1 session %.1f MB, with %d sessions %.1f MB: %.2f MB per extra session",
		float64(one)/1e6, n, float64(all)/1e6, float64(all-one)/1e6/float64(n-1))
	for _, tm := range tms {
		tm.Keys("q")
	}
	f.waitSessions(0, time.Minute)
}

// TestClientKilledMidFrame: a client killed while frames are on their way frees its session
// at once, and another session on the same model goes on undisturbed.
func TestClientKilledMidFrame(t *testing.T) {
	f := newFixture(t)
	want := f.score("chelsea.png", "coffee.png", "", 101)
	a, b := newTmux(t, 120, 40), newTmux(t, 100, 30)
	a.Run(f.sshLine(f.key, "chelsea.png", "coffee.png"))
	b.Run(f.sshLine(f.key, "chelsea.png", "coffee.png"))
	for _, tm := range []*termtest.Tmux{a, b} {
		tm.WaitFor(want, func(s string) bool { return strings.Contains(s, want) && strings.Contains(s, "ready") })
	}
	// Stop the client reading, make the server draw (new t, a resize), then kill it.
	a.Signal("STOP")
	a.Keys(">", ">", ">")
	a.Signal("KILL")
	f.waitSessions(1, 30*time.Second)
	if !strings.Contains(f.logText(), "dropped") {
		t.Errorf("the server did not log the dropped session:\n%s", f.logText())
	}
	b.Keys(".")
	want = f.score("chelsea.png", "coffee.png", "", 111)
	b.WaitFor("the other session's next score", func(s string) bool { return strings.Contains(s, "t 111") && strings.Contains(s, want) })
	b.Keys("q")
	b.WaitFor("the other session's end", func(s string) bool { return strings.Contains(s, "EXIT=0") })
	f.waitSessions(0, 10*time.Second)
}

// TestLimitsAndIdle: a key past its session limit and a server past its maximum are refused
// with one line; a session without a key press for the idle timeout is closed, saying why.
func TestLimitsAndIdle(t *testing.T) {
	f := newFixture(t, "--ssh-per-key", "1", "--ssh-max-sessions", "2")
	want := f.score("chelsea.png", "coffee.png", "", 101)
	tm := newTmux(t, 100, 30)
	tm.Run(f.sshLine(f.key, "chelsea.png", "coffee.png"))
	tm.WaitFor(want, func(s string) bool { return strings.Contains(s, want) })
	out, code := f.run(nil, "ssh", append(f.opts(f.key), "-tt", "-p", f.port, "localhost", "chelsea.png", "coffee.png")...)
	if code != 1 || !strings.Contains(out, "your key already has 1 sessions open") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("past the per-key limit: exit %d, %q; want 1 and one line", code, out)
	}
	other := f.keygen("other")
	pub, _ := os.ReadFile(other + ".pub")
	ak, _ := os.OpenFile(f.ak, os.O_APPEND|os.O_WRONLY, 0)
	ak.Write(pub) // keys added while the server runs count at once
	ak.Close()
	tm2 := newTmux(t, 100, 30)
	tm2.Run(f.sshLine(other, "chelsea.png", "coffee.png"))
	tm2.WaitFor(want, func(s string) bool { return strings.Contains(s, want) })
	third := f.keygen("third")
	out, code = f.run(nil, "ssh", append(f.opts(third), "-tt", "-p", f.port, "localhost")...)
	if code != 255 {
		t.Errorf("a key not listed: exit %d, %q", code, out)
	}
	pub, _ = os.ReadFile(third + ".pub")
	ak, _ = os.OpenFile(f.ak, os.O_APPEND|os.O_WRONLY, 0)
	ak.Write(pub)
	ak.Close()
	out, code = f.run(nil, "ssh", append(f.opts(third), "-tt", "-p", f.port, "localhost", "chelsea.png", "coffee.png")...)
	if code != 1 || !strings.Contains(out, "the server is full (2 sessions") {
		t.Errorf("past the maximum: exit %d, %q; want 1 and the server is full", code, out)
	}
	tm.Keys("q")
	tm2.Keys("q")
	f.waitSessions(0, 30*time.Second)

	// Idle: a fresh server with a short timeout.
	g := newFixture(t, "--ssh-idle-timeout", "2s")
	tm3 := newTmux(t, 100, 30)
	tm3.Run(g.sshLine(g.key, "chelsea.png", "coffee.png"))
	s := tm3.WaitFor("the idle close", func(s string) bool { return strings.Contains(s, "EXIT=1") })
	if !strings.Contains(s, "closed after 2s without a key press") {
		t.Errorf("an idle session's end does not say why:\n%s", s)
	}
	g.waitSessions(0, 10*time.Second)
}

// TestOpenModePicker: in the open mode any key gets in and the status line says so; with no
// arguments the session opens the picker, where typing filters and enter picks A then B.
func TestOpenModePicker(t *testing.T) {
	f := newFixture(t, "--ssh-open")
	anyone := f.keygen("anyone")
	tm := newTmux(t, 100, 30)
	tm.Run(f.sshLine(anyone))
	tm.WaitFor("the picker", func(s string) bool {
		return strings.Contains(s, "Image A") && strings.Contains(s, "chelsea.png") && strings.Contains(s, "coffee.png")
	})
	tm.Keys("c", "o", "f")
	tm.WaitFor("the filtered list", func(s string) bool { return strings.Contains(s, "1 of 2") && !strings.Contains(s, "chelsea.png") })
	tm.Keys("Enter")
	tm.WaitFor("image B's turn", func(s string) bool { return strings.Contains(s, "Image B") && strings.Contains(s, "A: coffee.png") })
	tm.Keys("c", "h", "Enter")
	want := f.score("coffee.png", "chelsea.png", "", 101)
	s := tm.WaitFor(want, func(s string) bool { return strings.Contains(s, want) && strings.Contains(s, "ready") })
	if !strings.Contains(s, "open mode") {
		t.Errorf("the open mode is not in the session's status line:\n%s", s)
	}
	tm.Keys("q")
	tm.WaitFor("the session's end", func(s string) bool { return strings.Contains(s, "EXIT=0") })
}

// fakeTerminal answers the explorer's terminal queries as a sixel terminal does (xterm -ti
// vt340): what it writes goes through ssh's stdin, the SSH channel and the session's pty.
type fakeTerminal struct {
	mu  sync.Mutex
	out bytes.Buffer
}

// sixelImage is the start of a sixel image: DCS, parameters, q, raster attributes.
var sixelImage = regexp.MustCompile("\x1bP[0-9;]*q\"[0-9;]+")

func (ft *fakeTerminal) bytes() []byte {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return bytes.Clone(ft.out.Bytes())
}

func (ft *fakeTerminal) contains(s string) bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return bytes.Contains(ft.out.Bytes(), []byte(s))
}

// TestTerminalDetection: graphics are chosen from the client terminal's own answers, read
// through the SSH channel (sixel for a terminal that reports it), and 24-bit colour from the
// COLORTERM the client sends.
func TestTerminalDetection(t *testing.T) {
	f := newFixture(t)
	// run waits until drawn says the session has drawn what the case checks, then quits. A
	// raw byte stream is not a screen: the renderer writes only the cells that change, so a
	// word on screen ("ready") need not appear whole in it; what each case waits for does.
	run := func(sshOpts []string, answer bool, drawn func(*fakeTerminal) bool, args ...string) *fakeTerminal {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		all := append(append(append(f.opts(f.key), sshOpts...), "-tt", "-p", f.port, "localhost"), args...)
		cmd := exec.CommandContext(ctx, "ssh", all...)
		cmd.Env = append(os.Environ(), "TERM=xterm-256color", "COLORTERM=")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ft := &fakeTerminal{}
		read := make(chan struct{})
		go func() {
			defer close(read)
			buf := make([]byte, 32<<10)
			for {
				n, err := stdout.Read(buf)
				ft.mu.Lock()
				ft.out.Write(buf[:n])
				da1 := answer && bytes.Contains(buf[:n], []byte("\x1b[c"))
				ft.mu.Unlock()
				if da1 { // cell size, then DA1 with attribute 4 (sixel), as xterm -ti vt340
					io.WriteString(stdin, "\x1b[6;20;10t\x1b[?63;1;2;4;6;9;15;16;22;28c")
				}
				if err != nil {
					return
				}
			}
		}()
		deadline := time.Now().Add(2 * time.Minute)
		for !drawn(ft) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(stdin, "q")
		<-read
		cmd.Wait()
		return ft
	}
	sixels := func(ft *fakeTerminal) bool { return sixelImage.Match(ft.bytes()) }
	sixel := run(nil, true, sixels, "chelsea.png", "coffee.png")
	if !sixels(sixel) {
		t.Errorf("a terminal answering DA1 with sixel got no sixel images (%d bytes: %.400q)", sixel.out.Len(), sixel.bytes())
	}
	trueColour := func(ft *fakeTerminal) bool { return ft.contains("graphics: halfblock") && ft.contains("38;2;") }
	tc := run([]string{"-o", "SetEnv=COLORTERM=truecolor"}, false, trueColour, "chelsea.png", "coffee.png", "--graphics", "halfblock")
	if !trueColour(tc) {
		t.Errorf("COLORTERM=truecolor sent by the client did not give 24-bit half-blocks (%d bytes: %.600q)", tc.out.Len(), tc.bytes())
	}
	// Half-block pictures drawn: their colours are the ones the session chose.
	halfBlocks := func(ft *fakeTerminal) bool { return ft.contains("graphics: halfblock") && ft.contains("▀") }
	plain := run(nil, false, halfBlocks, "chelsea.png", "coffee.png", "--graphics", "halfblock")
	if !halfBlocks(plain) {
		t.Errorf("without COLORTERM no half-block pictures were drawn (%d bytes: %.600q)", plain.out.Len(), plain.bytes())
	}
	if plain.contains("38;2;") {
		t.Errorf("without COLORTERM the half-blocks are 24-bit anyway")
	}
}
