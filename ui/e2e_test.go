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

	"github.com/diffsim/diffsim/ui/termtest"

	"github.com/diffsim/diffsim/ui/internal/fake"
)

// TestEndToEndTmux drives the demo binary (the explorer over the fake backend) in a real
// terminal, tmux, by keys, and reads the screen back.
func TestEndToEndTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and runs tmux")
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

	tm := termtest.NewTmux(t, 120, 40)
	tm.Run(fmt.Sprintf("%s -delay 50ms -graphics halfblock %q fake:b", bin, imgA))
	screen := tm.WaitFor("first score", func(s string) bool {
		return strings.Contains(s, "AAS 0.") && strings.Contains(s, "t 401") && strings.Contains(s, "● ready")
	})
	if !strings.Contains(screen, "stripes a.png") || !strings.Contains(screen, "Up0 #5") {
		t.Fatalf("first screen lacks the image name or layer:\n%s", screen)
	}
	score0 := scoreLine(screen)

	tm.Keys(".")
	screen = tm.WaitFor("t=411", func(s string) bool { return strings.Contains(s, "t 411") && scoreLine(s) != score0 })
	score1 := scoreLine(screen)

	tm.Keys("J")
	screen = tm.WaitFor("layer Up1", func(s string) bool { return strings.Contains(s, "Up1 #6") && scoreLine(s) != score1 })

	tm.Keys(">")
	tm.WaitFor("t=511", func(s string) bool {
		return strings.Contains(s, "t 511") && strings.Contains(s, "(reference step 490)")
	})

	tm.Keys("w")
	tm.WaitFor("sweep", func(s string) bool { return strings.Contains(s, "layer × timestep") })
	tm.Keys("Escape")
	tm.WaitFor("back from the sweep", func(s string) bool { return strings.Contains(s, "Up1 #6") && !strings.Contains(s, "layer × timestep") })
	// In the sweep, arrows move its cursor and Enter shows that layer and t.
	tm.Keys("w", "Up", "Left", "Enter")
	tm.WaitFor("sweep jump", func(s string) bool {
		return strings.Contains(s, "Up0 #5") && strings.Contains(s, "t 400") && !strings.Contains(s, "layer × timestep")
	})
	tm.Keys("?")
	tm.WaitFor("help page", func(s string) bool {
		return strings.Contains(s, "bar scale") && strings.Contains(s, "What the numbers mean") && !strings.Contains(s, "▀")
	})
	tm.Keys("Escape")
	tm.WaitFor("help folded", func(s string) bool { return strings.Contains(s, "Up0 #5") && strings.Contains(s, "▀") })
	tm.Keys("q")
	tm.WaitFor("shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "diffsim") })
	tm.Run("echo ok-$((40+2))")
	tm.WaitFor("shell usable", func(s string) bool { return strings.Contains(s, "ok-42") })

	// Ctrl-C while the network runs (10 s per timestep) exits at once, terminal restored.
	tm.Run(fmt.Sprintf("%s -delay 10s -graphics halfblock fake:a fake:b; echo exit-$?", bin))
	tm.WaitFor("computing", func(s string) bool { return strings.Contains(s, "scoring") })
	start := time.Now()
	tm.Keys("C-c")
	tm.WaitFor("exit after ctrl-c", func(s string) bool { return strings.Contains(s, "exit-0") })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("ctrl-c took %v", d)
	}
	tm.Run("stty -a | grep -o ' echo ' ; echo ok-$((1+1))")
	tm.WaitFor("echo restored", func(s string) bool { return strings.Contains(s, "ok-2") && strings.Contains(s, " echo ") })

	// SIGHUP (a dropped SSH connection) ends it cleanly.
	tm.Run(fmt.Sprintf("%s -delay 10s -graphics halfblock fake:a fake:b; echo exit-$?", bin))
	tm.WaitFor("computing", func(s string) bool { return strings.Contains(s, "scoring") })
	tm.Signal("HUP")
	tm.WaitFor("exit after SIGHUP", func(s string) bool { return strings.Count(s, "exit-0") == 2 })

	// A missing image: a message in the UI and on exit.
	tm.Run(fmt.Sprintf("%s /nonexistent.png fake:b; echo exit-$?", bin))
	tm.WaitFor("error screen", func(s string) bool { return strings.Contains(s, "Could not open the images") })
	tm.Keys("q")
	tm.WaitFor("error on exit", func(s string) bool {
		return strings.Contains(s, "fakedemo: image A: open /nonexistent.png") && strings.Contains(s, "exit-1")
	})
}

var scoreRE = regexp.MustCompile(`AAS \d\.\d{4}`)

func scoreLine(screen string) string { return scoreRE.FindString(screen) }
