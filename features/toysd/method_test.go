package toysd_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/toysd"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/bench"
	"github.com/diffsim/diffsim/session/bench/synth"
)

// accuracy decides tasks at one layer and t as `diffsim bench` does (bench.Decide on the AAS
// of (Ref, A) and (Ref, B)) and returns the share decided right with its 95% Wilson bounds.
func accuracy(t *testing.T, s *session.Session, root string, tasks []bench.Task, layer, tt int) (acc, lo float64) {
	t.Helper()
	imgs := map[string]*api.Image{}
	load := func(rel string) *api.Image {
		if im, ok := imgs[rel]; ok {
			return im
		}
		im, err := s.Load(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		imgs[rel] = im
		return im
	}
	score := func(a, b string) float64 {
		r, err := s.Score(t.Context(), api.Request{A: load(a), B: load(b), Layer: layer, T: tt, Metric: api.AAS, Token: -1})
		if err != nil {
			t.Fatal(err)
		}
		return r.Score
	}
	right := 0
	for _, task := range tasks {
		if bench.Decide(task, score(task.Ref, task.A), score(task.Ref, task.B), true, bench.Settings{}).Correct {
			right++
		}
	}
	acc, lo, _ = bench.Wilson(right, len(tasks))
	return acc, lo
}

// openModel opens a session on the embedded model name, unpacked under root.
func openModel(t *testing.T, root, name string) *session.Session {
	t.Helper()
	model, err := toysd.Dir(root, name)
	if err != nil {
		t.Fatal(err)
	}
	spec := api.DefaultSpec()
	spec.Model, spec.Device = model, "cpu"
	s, err := session.Open(t.Context(), session.Options{Spec: spec, Families: families.All()})
	enginetest.Check(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func layerIndex(t *testing.T, s *session.Session, name string) int {
	t.Helper()
	for i, l := range s.Info().Layers {
		if l.Name == name || l.Short == name {
			return i
		}
	}
	t.Fatalf("%s has no layer %s", s.Info().Name, name)
	return -1
}

// Cells of the layers × t maps in docs/toy-sd.md (measured with `diffsim bench grid` on the
// same held-back set and the same decisions), and what they showed there, trained against
// untrained:
//
//   - content at Up0, t = 501, the trained map's best content cell: 71.2% against 50.9%
//     (the untrained network is at chance for content everywhere);
//   - style at down_blocks.0.attentions.0 attn1, t = 501, the trained map's best style cell:
//     99.6% against 98.0% (style is plain to the first layer of either network);
//   - style at Up0, t = 101: 89.3% against 74.8% (training makes the deep layers see style).
var cells = []struct {
	set, layer string
	t          int
	untrained  string // what the untrained network must do there: "chance" or "above chance"
	want       string // how the trained one must compare: "above" the untrained or "above chance"
}{
	{"content", "Up0", 501, "", "above"},
	{"style", "down_blocks.0.attentions.0.transformer_blocks.0.attn1", 501, "above chance", "above chance"},
	{"style", "Up0", 101, "", "above"},
}

// TestMethodInMiniature checks what the measured maps show by wide margins, so that a model
// retrained with the same recipe would pass too: at each cell the trained network decides the
// held-back triplets better than chance (the 95% interval's lower bound above 0.5), and better
// than the same network before training where training made the difference; where style is
// plain to any network, the untrained one is above chance as well.
func TestMethodInMiniature(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	if _, err := synth.Write(t.Context(), dir, synth.Options{Styles: synth.DefaultStyles, Contents: synth.DefaultContents, Size: toysd.Size, Seed: synth.DefaultSeed}); err != nil {
		t.Fatal(err)
	}
	// The decisions `diffsim bench grid` makes on this folder (its --sample-seed is 1).
	ds, err := bench.Load("grid", dir, bench.Options{SampleSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]bench.Task{}
	for _, task := range ds.Tasks {
		sets[task.Set] = append(sets[task.Set], task)
	}
	trained := openModel(t, root, toysd.Name)
	untrained := openModel(t, root, toysd.UntrainedName)
	for _, c := range cells {
		ts := sets[c.set]
		at, lt := accuracy(t, trained, dir, ts, layerIndex(t, trained, c.layer), c.t)
		au, lu := accuracy(t, untrained, dir, ts, layerIndex(t, untrained, c.layer), c.t)
		msg := fmt.Sprintf("%s at %s, t=%d (%d decisions): trained %.3f (95%% lower bound %.3f), untrained %.3f (%.3f)", c.set, c.layer, c.t, len(ts), at, lt, au, lu)
		t.Log(msg)
		if lt <= 0.5 {
			t.Errorf("%s: the trained network is not above chance", msg)
		}
		if c.want == "above" && at <= au {
			t.Errorf("%s: the trained network is not above the untrained one", msg)
		}
		if c.untrained == "above chance" && lu <= 0.5 {
			t.Errorf("%s: the untrained network is not above chance", msg)
		}
	}
}
