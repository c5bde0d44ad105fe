package ui

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/diffsim/diffsim/ui/internal/fake"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGoldenViews compares the text of the view (colours stripped: half-block images are
// rows of ▀) in the main states at three terminal sizes.
func TestGoldenViews(t *testing.T) {
	states := []struct {
		name  string
		setup func(t *testing.T, w, h int) *Model
	}{
		{"loading", func(t *testing.T, w, h int) *Model {
			m, _ := newTestModel(t, w, h, "fake:a", "fake:b")
			return m
		}},
		{"ready", func(t *testing.T, w, h int) *Model {
			m, _ := readyModel(t, w, h)
			return m
		}},
		{"sweep", func(t *testing.T, w, h int) *Model {
			m, _ := readyModel(t, w, h)
			send(m, press("w"))
			return m
		}},
		{"help", func(t *testing.T, w, h int) *Model {
			m, _ := readyModel(t, w, h)
			send(m, press("?"))
			return m
		}},
		{"error", func(t *testing.T, w, h int) *Model {
			m, _ := newTestModel(t, w, h, "missing-a.png", "fake:b")
			drive(m, m.loadCmd(m.pair.pathA, m.pair.pathB))
			return m
		}},
		{"prompt", func(t *testing.T, w, h int) *Model {
			m, _ := readyModel(t, w, h)
			send(m, press("p"))
			return m
		}},
		{"conditioned", func(t *testing.T, w, h int) *Model {
			m := condModel(t, w, h, fake.New())
			send(m, press("P"))
			typeText(m, "a photo of a cat")
			send(m, press("enter"))
			return m
		}},
		{"clip", func(t *testing.T, w, h int) *Model {
			m := clipModel(t, w, h, 12)
			send(m, press("right"))
			return m
		}},
		{"calibrated", func(t *testing.T, w, h int) *Model {
			return calibratedModel(t, w, h)
		}},
		{"rescaled", func(t *testing.T, w, h int) *Model {
			m := calibratedModel(t, w, h)
			send(m, press("r"))
			return m
		}},
		{"sweep_rescaled", func(t *testing.T, w, h int) *Model {
			m := calibratedModel(t, w, h)
			send(m, press("r"))
			send(m, press("w"))
			return m
		}},
		{"many_layers", func(t *testing.T, w, h int) *Model {
			return readyModelOf(t, w, h, fake.NewSD(), nil)
		}},
		{"many_layers_sweep", func(t *testing.T, w, h int) *Model {
			m := readyModelOf(t, w, h, fake.NewSD(), nil)
			send(m, press("w"))
			return m
		}},
		{"computing", func(t *testing.T, w, h int) *Model {
			// The layer changed and its score is not back yet: the panel and the maps say
			// so, and neither shows the old layer's numbers or maps.
			m, _ := readyModel(t, w, h)
			m.Update(press("J"))
			return m
		}},
		{"export_message", func(t *testing.T, w, h int) *Model {
			m, _ := readyModel(t, w, h)
			send(m, exportMsg{dir: "/home/researcher/experiments/2026-01-02/texture-vs-shape/diffsim-export",
				files: []string{"chelsea_vs_coffee_Up0_t401.png", "chelsea_vs_coffee_Up0_t401.json"}})
			return m
		}},
		{"meaningless", func(t *testing.T, w, h int) *Model {
			m, _ := readyModel(t, w, h)
			send(m, layerSelectMsg{1}) // text cross-attention, as --layer or a click chooses it
			return m
		}},
	}
	sizes := [][2]int{{80, 23}, {100, 30}, {120, 40}}
	for _, st := range states {
		for _, sz := range sizes {
			name := fmt.Sprintf("%s_%dx%d", st.name, sz[0], sz[1])
			t.Run(name, func(t *testing.T) {
				m := st.setup(t, sz[0], sz[1])
				golden(t, name, m.content())
			})
		}
	}
	for _, sz := range [][2]int{{79, 23}, {80, 22}} {
		name := fmt.Sprintf("toosmall_%dx%d", sz[0], sz[1])
		t.Run(name, func(t *testing.T) {
			m, _ := readyModel(t, sz[0], sz[1])
			golden(t, name, m.content())
		})
	}
}

func golden(t *testing.T, name, view string) {
	t.Helper()
	got := ansi.Strip(view)
	// Trailing blanks carry no information and editors strip them.
	lines := strings.Split(got, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	got = strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -run TestGoldenViews -update)", err)
	}
	if got != string(want) {
		t.Errorf("view differs from %s (rerun with -update if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
