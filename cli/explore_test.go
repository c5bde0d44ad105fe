package cli

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/ui/termtest"
)

// TestExplorerInTmux drives the real binary with the built-in model in tmux: the score, the
// layer name and t change as keys are pressed, and quitting leaves the shell usable.
func TestExplorerInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tmux")
	}
	if !cgoEnabled {
		t.Skip("built without cgo: the binary would have no ONNX Runtime")
	}
	bin := filepath.Join(t.TempDir(), "diffsim")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tm := termtest.NewTmux(t, 120, 40)
	tm.Wait = time.Minute // the built-in model's first run, under the race detector's load
	score := regexp.MustCompile(`AAS \d\.\d{4}`)
	tm.Run(fmt.Sprintf("%s ../testdata/samples/chelsea.png ../testdata/samples/coffee.png --size 128 --graphics halfblock --quiet", bin))
	s := tm.WaitFor("the first score", func(s string) bool {
		return score.MatchString(s) && strings.Contains(s, "t 101") && strings.Contains(s, "ready")
	})
	if !strings.Contains(s, "medium.attn") || !strings.Contains(s, "chelsea.png") {
		t.Fatalf("first screen lacks the layer or image name:\n%s", s)
	}
	first := score.FindString(s)

	tm.Keys(">")
	s = tm.WaitFor("t=201", func(s string) bool { return strings.Contains(s, "t 201") && strings.Contains(s, "ready") })
	second := score.FindString(s)
	if second == first {
		t.Errorf("the score did not change from t=101 to t=201: %s", first)
	}
	tm.Keys("J")
	tm.WaitFor("the coarse layer", func(s string) bool {
		return strings.Contains(s, "layer #2") && score.FindString(s) != second
	})
	tm.Keys("q")
	tm.WaitFor("the shell back", func(s string) bool { return strings.Contains(s, "$ ") && !strings.Contains(s, "ready") })
	tm.Run("echo ok-$((40+2))")
	tm.WaitFor("a usable shell", func(s string) bool { return strings.Contains(s, "ok-42") })
}
