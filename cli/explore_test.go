package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/serve/servetest"
	"github.com/diffsim/diffsim/ui/termtest"
)

// buildDiffsim builds the program into a temporary folder and returns its path.
func buildDiffsim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "diffsim")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestExplorerInTmux drives the real binary with the built-in model in tmux, in an 80×23
// pane (tmux at 80×24 under its status line): the score, the layer name and t change as keys
// are pressed, the score shown is always the one of the layer and t shown beside it, and
// quitting leaves the shell usable.
func TestExplorerInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tmux")
	}
	if !cgoEnabled {
		t.Skip("built without cgo: the binary would have no ONNX Runtime")
	}
	bin := buildDiffsim(t)
	tm := termtest.NewTmux(t, 80, 23)
	tm.Wait = 2 * time.Minute // the built-in model's first run, at load 15 or under the race detector
	score := regexp.MustCompile(`AAS \d\.\d{4}`)
	// The panel shows a number only once it answers the layer and t it names ("AAS
	// computing…" until then): waiting for the t and a number waits for that t's score.
	tm.Run(fmt.Sprintf("%s ../testdata/samples/chelsea.png ../testdata/samples/coffee.png --size 128 --graphics halfblock --quiet", bin))
	s := tm.WaitFor("the first score", func(s string) bool {
		return score.MatchString(s) && strings.Contains(s, "t 101") && strings.Contains(s, "ready")
	})
	if !strings.Contains(s, "medium.attn") || !strings.Contains(s, "chelsea.png") {
		t.Fatalf("first screen lacks the layer or image name:\n%s", s)
	}
	first := score.FindString(s)

	tm.Keys(">")
	s = tm.WaitFor("t=201", func(s string) bool {
		return strings.Contains(s, "t 201") && score.MatchString(s) && strings.Contains(s, "ready")
	})
	second := score.FindString(s)
	if second == first {
		t.Errorf("the score did not change from t=101 to t=201: %s", first)
	}
	tm.Keys("J")
	tm.WaitFor("the coarse layer", func(s string) bool {
		return strings.Contains(s, "coarse.attn #2") && score.MatchString(s) && score.FindString(s) != second
	})
	tm.Keys("q")
	tm.WaitFor("the shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "ready") })
	tm.Run("echo ok-$((40+2))")
	tm.WaitFor("a usable shell", func(s string) bool { return strings.Contains(s, "ok-42") })
}

// TestExplorerInTmuxServed runs the real binary against a running server: the explorer says
// it is served and shows the score `diffsim score --no-server` gives; a second explorer
// finds the model the first one loaded (the server loads it once); --no-server computes here.
func TestExplorerInTmuxServed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tmux")
	}
	if !cgoEnabled {
		t.Skip("built without cgo: the binary would have no ONNX Runtime")
	}
	a, b := "../testdata/samples/chelsea.png", "../testdata/samples/coffee.png"
	code, out, stderr := runCmd(t, "score", a, b, "--size", "128", "--no-server", "--json")
	if code != 0 {
		t.Fatalf("score: exit %d: %s", code, stderr)
	}
	var rec struct{ Score float64 }
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("AAS %.4f", rec.Score)

	bin := buildDiffsim(t)
	startTestServer(t)
	sock := os.Getenv("DIFFSIM_SOCKET")
	cl, err := api.Dial(t.Context(), sock, "")
	if err != nil {
		t.Fatal(err)
	}
	loadedAt := func() []time.Time {
		ms, err := cl.Models(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var at []time.Time
		for _, m := range ms.Models {
			at = append(at, m.LoadedAt)
		}
		return at
	}

	tm := termtest.NewTmux(t, 120, 40)
	tm.Wait = time.Minute
	score := regexp.MustCompile(`AAS \d\.\d{4}`)
	explore := fmt.Sprintf("DIFFSIM_SOCKET=%s %s %s %s --size 128 --graphics halfblock --quiet", sock, bin, a, b)
	var first []time.Time
	for run := range 2 {
		tm.Run(explore)
		s := tm.WaitFor("the first served score", func(s string) bool {
			return score.MatchString(s) && strings.Contains(s, "ready") && strings.Contains(s, "served ·")
		})
		if got := score.FindString(s); got != want || !strings.Contains(s, "on cpu · served") {
			t.Fatalf("run %d: served explorer shows %q, want %q (score --no-server), and \"on cpu · served\":\n%s", run, got, want, s)
		}
		tm.Keys(">")
		tm.WaitFor("t=201 served", func(s string) bool { return strings.Contains(s, "t 201") && strings.Contains(s, "ready") })
		tm.Keys("q")
		tm.WaitFor("the shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "ready") })
		if run == 0 {
			first = loadedAt()
		}
	}
	if at := loadedAt(); len(first) != 1 || len(at) != 1 || !at[0].Equal(first[0]) {
		t.Errorf("models loaded on the server: after the first explorer %v, after the second %v; want one, loaded once", first, at)
	}

	tm.Run(explore + " --no-server")
	s := tm.WaitFor("the first local score", func(s string) bool { return score.MatchString(s) && strings.Contains(s, "ready") })
	if strings.Contains(s, "served") || score.FindString(s) != want {
		t.Errorf("--no-server: the screen shows %q and says served=%v; want %q computed here:\n%s", score.FindString(s), strings.Contains(s, "served"), want, s)
	}
	tm.Keys("q")
	tm.WaitFor("the shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "ready") })
}

// TestExplorerFallsBackFromAnUnusableServer: a server that answers /v1/health but cannot
// open the model for the explorer (an older server without /v1/info; one at its memory
// bound) is said on stderr, and the explorer computes here.
func TestExplorerFallsBackFromAnUnusableServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tmux")
	}
	if !cgoEnabled {
		t.Skip("built without cgo: the binary would have no ONNX Runtime")
	}
	bin := buildDiffsim(t)
	cases := []struct {
		name   string
		status int
		answer string
		says   string
	}{
		{"older server", http.StatusNotFound, "no such endpoint POST /v1/info", "older than this explorer"},
		{"memory bound", http.StatusServiceUnavailable, "memory bound reached: 1 model(s) in use", "could not open the model (memory bound reached"},
	}
	tm := termtest.NewTmux(t, 120, 40)
	tm.Wait = time.Minute
	score := regexp.MustCompile(`AAS \d\.\d{4}`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sock := fakeServer(t, c.status, c.answer)
			tm.Run("clear")
			tm.Run(fmt.Sprintf("DIFFSIM_SOCKET=%s %s ../testdata/samples/chelsea.png ../testdata/samples/coffee.png --size 64 --graphics halfblock", sock, bin))
			s := tm.WaitFor("a local score", func(s string) bool { return score.MatchString(s) && strings.Contains(s, "ready") })
			if strings.Contains(s, "served") {
				t.Errorf("the explorer says served although the server could not open the model:\n%s", s)
			}
			tm.Keys("q")
			tm.WaitFor("the notice on stderr", func(s string) bool { return strings.Contains(s, c.says) && strings.Contains(s, "computing here") })
		})
	}
}

// fakeServer answers /v1/health as API v1 does and every other call with status and message.
func fakeServer(t *testing.T, status int, message string) string {
	t.Helper()
	sock := servetest.Socket(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/health" {
			json.NewEncoder(w).Encode(api.Health{Status: "ok", API: api.Version})
			return
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": message})
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return sock
}
