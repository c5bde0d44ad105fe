package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchSynth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "set")
	code, _, stderr := runCmd(t, "bench", "synth", dir, "--styles", "3", "--contents", "2", "--size", "32", "--seed", "5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "wrote 6 images (3 styles × 2 contents, 32 px, seed 5)") {
		t.Errorf("summary line: %q", stderr)
	}
	for _, style := range []string{"stripes-warm", "dots-cool", "checks-forest"} {
		for _, content := range []string{"disc", "triangle"} {
			if _, err := os.Stat(filepath.Join(dir, style, content+".png")); err != nil {
				t.Error(err)
			}
		}
	}
	for _, bad := range [][]string{{"--styles", "0"}, {"--contents", "9"}, {"--size", "2"}} {
		code, _, stderr := runCmd(t, append([]string{"bench", "synth", t.TempDir()}, bad...)...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", bad, code, stderr)
		}
	}
	if code, _, _ := runCmd(t, "bench", "synth"); code != 2 {
		t.Errorf("no folder: exit %d, want 2", code)
	}
}
