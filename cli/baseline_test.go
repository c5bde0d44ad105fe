package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session/baseline"
)

// TestBaselineBuildAndUse builds a baseline from a folder of photographs, finds it in the
// list, shows it, and sees score, sweep and rank calibrate against it, while a score at
// another size (another key) stays uncalibrated.
func TestBaselineBuildAndUse(t *testing.T) {
	t.Setenv("DIFFSIM_CACHE", t.TempDir())
	photos := t.TempDir()
	for i, p := range []string{"grass.png", "gravel.png", "brick.png", "coffee.png", "chelsea.png", "astronaut.png"} {
		writePNG(t, filepath.Join(photos, fmt.Sprintf("sub%d", i%2), p), samplePhoto(t, p))
	}
	code, stdout, stderr := runCmd(t, "baseline", "build", photos, "--size", "64", "--t", "50,150", "--quiet")
	if code != 0 {
		t.Fatalf("baseline build: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"6 pairs of 6 images", "64 px", "standard error", "saved to"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("build says %q, want %q in it", stdout, want)
		}
	}
	code, stdout, _ = runCmd(t, "baseline", "list")
	if code != 0 || !strings.Contains(stdout, photos) || !strings.Contains(stdout, "shipped") || !strings.Contains(stdout, fmt.Sprintf("%d baseline(s)", 1+len(baseline.ShippedModels))) {
		t.Errorf("baseline list (exit %d):\n%s", code, stdout)
	}
	code, stdout, stderr = runCmd(t, "baseline", "show", "--size", "64", "--metric", "mse")
	if code != 0 || !strings.Contains(stdout, "t=50") || !strings.Contains(stdout, "t=150") || !strings.Contains(stdout, "±") {
		t.Errorf("baseline show (exit %d): %s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runCmd(t, "score", imgA, imgB, "--size", "64", "--t", "100", "--json")
	if code != 0 {
		t.Fatalf("score: exit %d: %s", code, stderr)
	}
	var rec api.Record
	if err := json.Unmarshal([]byte(stdout), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Rescaled == nil || rec.Percentile == nil || rec.Baseline == nil || !rec.Baseline.Interpolated || rec.Baseline.Pairs != 6 || rec.Baseline.Source != photos {
		t.Errorf("score --json is not calibrated: rescaled %v percentile %v baseline %+v", rec.Rescaled, rec.Percentile, rec.Baseline)
	}
	code, stdout, _ = runCmd(t, "score", imgA, imgB, "--size", "64", "--t", "100")
	if code != 0 || !strings.Contains(stdout, "rescaled ") || !strings.Contains(stdout, "unrelated pair") {
		t.Errorf("score does not say what the baseline says:\n%s", stdout)
	}
	code, stdout, _ = runCmd(t, "score", imgA, imgB, "--size", "128", "--json")
	if code != 0 || !strings.Contains(stdout, `"rescaled":null`) || !strings.Contains(stdout, `"baseline":null`) {
		t.Errorf("a score at another size used the baseline:\n%s", stdout)
	}
	code, stdout, _ = runCmd(t, "sweep", imgA, imgB, "--size", "64", "--t", "50,150", "--json")
	if code != 0 || strings.Count(stdout, `"interpolated":false`) != 6 {
		t.Errorf("sweep --json: every cell at a built timestep should carry the baseline:\n%s", stdout)
	}
	code, stdout, _ = runCmd(t, "rank", imgA, photos, "--size", "64", "--t", "50", "--quiet")
	if code != 0 || !strings.Contains(stdout, "rescaled against baseline") || !strings.Contains(stdout, "pct") {
		t.Errorf("rank:\n%s", stdout)
	}
}

func TestBaselineUsageErrors(t *testing.T) {
	t.Setenv("DIFFSIM_CACHE", t.TempDir())
	empty := t.TempDir()
	one := t.TempDir()
	writePNG(t, filepath.Join(one, "a.png"), samplePhoto(t, "grass.png"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"baseline", "build", imgA}, "is not a folder"},
		{[]string{"baseline", "build", filepath.Join(empty, "missing")}, "no such file"},
		{[]string{"baseline", "build", one}, "needs at least two unrelated images"},
		{[]string{"baseline", "build", empty, "--pairs", "-1"}, "--pairs -1"},
		{[]string{"baseline", "show", "zzzz"}, `no baseline "zzzz"`},
		{[]string{"baseline", "show", "--size", "64"}, "no baseline for builtin at 64 px"},
		{[]string{"baseline", "show", "--metric", "x"}, `--metric "x"`},
		{[]string{"rank", imgA, empty}, "has no images to rank"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and one line with %q", code, stderr, stdout, tc.want)
			}
		})
	}
	// The shipped baseline of the built-in model is there without building anything.
	code, stdout, _ := runCmd(t, "baseline", "show")
	if code != 0 || !strings.Contains(stdout, "built-in reference set") || !strings.Contains(stdout, "fine.attn") {
		t.Errorf("baseline show (shipped): exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("DIFFSIM_CACHE"), "baselines")); err == nil {
		t.Error("a failed build left a baseline folder behind")
	}
}
