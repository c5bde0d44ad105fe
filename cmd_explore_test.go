package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExplorerInTmux drives the real binary with the built-in model in tmux: the score, the
// layer name and t change as keys are pressed, and quitting leaves the shell usable.
func TestExplorerInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux not installed: scripts/test.sh installs it in CI")
		}
		t.Skip("tmux not installed")
	}
	bin := filepath.Join(t.TempDir(), "diffsim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	name := fmt.Sprintf("diffsim-explore-%d", time.Now().UnixNano())
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40",
		"env", "PS1=$ ", "TERM=xterm-256color", "bash", "--norc", "--noprofile").CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	defer exec.Command("tmux", "kill-session", "-t", name).Run()
	send := func(keys ...string) {
		for _, k := range keys {
			if out, err := exec.Command("tmux", "send-keys", "-t", name, k).CombinedOutput(); err != nil {
				t.Fatalf("send-keys %q: %v %s", k, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	line := func(s string) {
		if out, err := exec.Command("tmux", "send-keys", "-t", name, "-l", s).CombinedOutput(); err != nil {
			t.Fatalf("send-keys: %v %s", err, out)
		}
		send("Enter")
	}
	screen := func() string {
		out, err := exec.Command("tmux", "capture-pane", "-p", "-t", name).Output()
		if err != nil {
			t.Fatalf("capture-pane: %v", err)
		}
		return string(out)
	}
	waitFor := func(what string, ok func(string) bool) string {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if s := screen(); ok(s) {
				return s
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s; screen:\n%s", what, screen())
		return ""
	}
	score := regexp.MustCompile(`AAS \d\.\d{4}`)
	line(fmt.Sprintf("%s testdata/samples/chelsea.png testdata/samples/coffee.png --size 128 --graphics halfblock --quiet", bin))
	s := waitFor("the first score", func(s string) bool {
		return score.MatchString(s) && strings.Contains(s, "t 101") && strings.Contains(s, "ready")
	})
	if !strings.Contains(s, "medium.attn") || !strings.Contains(s, "chelsea.png") {
		t.Fatalf("first screen lacks the layer or image name:\n%s", s)
	}
	first := score.FindString(s)

	send(">")
	s = waitFor("t=201", func(s string) bool { return strings.Contains(s, "t 201") && strings.Contains(s, "ready") })
	second := score.FindString(s)
	if second == first {
		t.Errorf("the score did not change from t=101 to t=201: %s", first)
	}
	send("J")
	waitFor("the coarse layer", func(s string) bool {
		return strings.Contains(s, "layer #2") && score.FindString(s) != second
	})
	send("q")
	waitFor("the shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "ready") })
	line("echo ok-$((40+2))")
	waitFor("a usable shell", func(s string) bool { return strings.Contains(s, "ok-42") })
}
