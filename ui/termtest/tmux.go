package termtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Tmux is a tmux session running a bare shell (prompt "$ "), for end-to-end tests.
type Tmux struct {
	t    testing.TB
	name string
	// Wait is how long WaitFor waits; programs that run a network take longer than the UI.
	Wait time.Duration
}

// NewTmux starts a session of cols × rows cells. Without tmux the test fails in CI (where
// scripts/test.sh installs it) and is skipped elsewhere.
func NewTmux(t testing.TB, cols, rows int) *Tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux not installed: scripts/test.sh installs it in CI")
		}
		t.Skip("tmux not installed")
	}
	tm := &Tmux{t: t, name: fmt.Sprintf("diffsim-test-%d", time.Now().UnixNano()), Wait: 10 * time.Second}
	cmd := exec.Command("tmux", "new-session", "-d", "-s", tm.name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows),
		"env", "PS1=$ ", "TERM=xterm-256color", "bash", "--norc", "--noprofile")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", tm.name).Run() })
	return tm
}

// Keys sends tmux key names (Enter, C-c, or plain characters), one after another.
func (tm *Tmux) Keys(keys ...string) {
	tm.t.Helper()
	for _, k := range keys {
		if out, err := exec.Command("tmux", "send-keys", "-t", tm.name, k).CombinedOutput(); err != nil {
			tm.t.Fatalf("send-keys %q: %v %s", k, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run types a command line and presses Enter.
func (tm *Tmux) Run(line string) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", "send-keys", "-t", tm.name, "-l", line).CombinedOutput(); err != nil {
		tm.t.Fatalf("send-keys: %v %s", err, out)
	}
	tm.Keys("Enter")
}

// Signal sends sig (e.g. "HUP") to the program running in the pane's shell.
func (tm *Tmux) Signal(sig string) {
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

// Screen is what the pane shows now, as text.
func (tm *Tmux) Screen() string {
	tm.t.Helper()
	out, err := exec.Command("tmux", "capture-pane", "-p", "-t", tm.name).Output()
	if err != nil {
		tm.t.Fatalf("capture-pane: %v", err)
	}
	return string(out)
}

// WaitFor polls the screen until ok says yes of two captures in a row that are the same,
// and fails the test after tm.Wait. Two alike: a capture can fall in the middle of a frame
// being written (tmux shows what arrived so far), when one line is new and another old; a
// screen that says the same twice has settled.
func (tm *Tmux) WaitFor(what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(tm.Wait)
	var s, prev string
	for time.Now().Before(deadline) {
		s = tm.Screen()
		if ok(s) && s == prev {
			return s
		}
		prev = s
		time.Sleep(50 * time.Millisecond)
	}
	tm.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
	return s
}

// Resize changes the window to cols × rows cells, as a user dragging the terminal's corner.
func (tm *Tmux) Resize(cols, rows int) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", "resize-window", "-t", tm.name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows)).CombinedOutput(); err != nil {
		tm.t.Fatalf("resize-window: %v %s", err, out)
	}
}

// AltScreen reports whether the pane shows the alternate screen: a full-screen program that
// ended without leaving it left the terminal unusable.
func (tm *Tmux) AltScreen() bool {
	tm.t.Helper()
	out, err := exec.Command("tmux", "display-message", "-p", "-t", tm.name, "#{alternate_on}").Output()
	if err != nil {
		tm.t.Fatalf("display-message: %v", err)
	}
	return strings.TrimSpace(string(out)) == "1"
}
