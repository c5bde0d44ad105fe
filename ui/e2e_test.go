package ui

import (
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/ui/internal/fake"
)

// TestEndToEndTmux drives the demo binary (the explorer over the fake backend) in a real
// terminal, tmux, by keys, and reads the screen back.
func TestEndToEndTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and runs tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux not installed: scripts/test.sh installs it in CI")
		}
		t.Skip("tmux not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakedemo")
	build := exec.Command("go", "build", "-o", bin, "./internal/fakedemo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	imgA := filepath.Join(dir, "stripes a.png")
	f, err := os.Create(imgA)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, fake.Pattern("stripes", 96, 64)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	tm := newTmux(t, 120, 40)
	tm.run(fmt.Sprintf("%s -delay 50ms -graphics halfblock %q fake:b", bin, imgA))
	screen := tm.waitFor("first score", func(s string) bool {
		return strings.Contains(s, "AAS 0.") && strings.Contains(s, "t 401") && strings.Contains(s, "● ready")
	})
	if !strings.Contains(screen, "stripes a.png") || !strings.Contains(screen, "Up0 #5") {
		t.Fatalf("first screen lacks the image name or layer:\n%s", screen)
	}
	score0 := scoreLine(screen)

	tm.keys(".")
	screen = tm.waitFor("t=411", func(s string) bool { return strings.Contains(s, "t 411") && scoreLine(s) != score0 })
	score1 := scoreLine(screen)

	tm.keys("J")
	screen = tm.waitFor("layer Up1", func(s string) bool { return strings.Contains(s, "Up1 #6") && scoreLine(s) != score1 })

	tm.keys(">")
	tm.waitFor("t=511", func(s string) bool {
		return strings.Contains(s, "t 511") && strings.Contains(s, "(reference step 490)")
	})

	tm.keys("w")
	tm.waitFor("sweep", func(s string) bool { return strings.Contains(s, "layer × timestep") })
	tm.keys("w", "?")
	tm.waitFor("help", func(s string) bool { return strings.Contains(s, "any key closes this help") })
	tm.keys("x", "q")
	tm.waitFor("shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "diffsim") })
	tm.run("echo ok-$((40+2))")
	tm.waitFor("shell usable", func(s string) bool { return strings.Contains(s, "ok-42") })

	// Ctrl-C while the network runs (10 s per timestep) exits at once, terminal restored.
	tm.run(fmt.Sprintf("%s -delay 10s -graphics halfblock fake:a fake:b; echo exit-$?", bin))
	tm.waitFor("computing", func(s string) bool { return strings.Contains(s, "scoring") })
	start := time.Now()
	tm.keys("C-c")
	tm.waitFor("exit after ctrl-c", func(s string) bool { return strings.Contains(s, "exit-0") })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("ctrl-c took %v", d)
	}
	tm.run("stty -a | grep -o ' echo ' ; echo ok-$((1+1))")
	tm.waitFor("echo restored", func(s string) bool { return strings.Contains(s, "ok-2") && strings.Contains(s, " echo ") })

	// SIGHUP (a dropped SSH connection) ends it cleanly.
	tm.run(fmt.Sprintf("%s -delay 10s -graphics halfblock fake:a fake:b; echo exit-$?", bin))
	tm.waitFor("computing", func(s string) bool { return strings.Contains(s, "scoring") })
	tm.signal("HUP")
	tm.waitFor("exit after SIGHUP", func(s string) bool { return strings.Count(s, "exit-0") == 2 })

	// A missing image: a message in the UI and on exit.
	tm.run(fmt.Sprintf("%s /nonexistent.png fake:b; echo exit-$?", bin))
	tm.waitFor("error screen", func(s string) bool { return strings.Contains(s, "Could not open the images") })
	tm.keys("q")
	tm.waitFor("error on exit", func(s string) bool {
		return strings.Contains(s, "fakedemo: image A: open /nonexistent.png") && strings.Contains(s, "exit-1")
	})
}

var scoreRE = regexp.MustCompile(`AAS \d\.\d{4}`)

func scoreLine(screen string) string { return scoreRE.FindString(screen) }

type tmux struct {
	t    *testing.T
	name string
}

func newTmux(t *testing.T, w, h int) *tmux {
	tm := &tmux{t: t, name: fmt.Sprintf("diffsim-e2e-%d", time.Now().UnixNano())}
	cmd := exec.Command("tmux", "new-session", "-d", "-s", tm.name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h),
		"env", "PS1=$ ", "TERM=xterm-256color", "bash", "--norc", "--noprofile")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", tm.name).Run() })
	return tm
}

func (tm *tmux) keys(keys ...string) {
	tm.t.Helper()
	for _, k := range keys {
		if out, err := exec.Command("tmux", "send-keys", "-t", tm.name, k).CombinedOutput(); err != nil {
			tm.t.Fatalf("send-keys %q: %v %s", k, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tm *tmux) run(line string) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", "send-keys", "-t", tm.name, "-l", line).CombinedOutput(); err != nil {
		tm.t.Fatalf("send-keys: %v %s", err, out)
	}
	tm.keys("Enter")
}

// signal sends sig to the program running in the pane's shell.
func (tm *tmux) signal(sig string) {
	tm.t.Helper()
	shell, err := exec.Command("tmux", "list-panes", "-t", tm.name, "-F", "#{pane_pid}").Output()
	if err != nil {
		tm.t.Fatalf("list-panes: %v", err)
	}
	child, err := exec.Command("pgrep", "-P", strings.TrimSpace(string(shell))).Output()
	if err != nil {
		tm.t.Fatalf("no program running in the pane: %v", err)
	}
	pid := strings.Fields(string(child))[0]
	if out, err := exec.Command("kill", "-"+sig, pid).CombinedOutput(); err != nil {
		tm.t.Fatalf("kill -%s %s: %v %s", sig, pid, err, out)
	}
}

func (tm *tmux) capture() string {
	out, err := exec.Command("tmux", "capture-pane", "-p", "-t", tm.name).Output()
	if err != nil {
		tm.t.Fatalf("capture-pane: %v", err)
	}
	return string(out)
}

func (tm *tmux) waitFor(what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var s string
	for time.Now().Before(deadline) {
		s = tm.capture()
		if ok(s) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
	return s
}
