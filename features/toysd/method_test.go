package toysd_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/toysd"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/bench/synth"
)

// triplet is one decision: is A or B more similar to the reference? A is right by construction.
type triplet struct{ ref, a, b [2]int } // (style, content) indices

// styleContentTriplets are the grid layout's two decision sets on a full styles × contents
// set (session/bench's StyleContent): style — reference (s, c), A = (s, c′), B = (s′, c′);
// content — reference (s, c), A = (s′, c), B = (s′, c′). The candidates share the label not
// being asked about, so only the other one can tell them apart. Where the layout draws the
// other label of B at random, this takes the next one round, which every (s, c) has.
func styleContentTriplets(styles, contents int) (style, content []triplet) {
	for s := range styles {
		for c := range contents {
			for k := 1; k < contents; k++ {
				c2 := (c + k) % contents
				s2 := (s + k) % styles
				style = append(style, triplet{ref: [2]int{s, c}, a: [2]int{s, c2}, b: [2]int{s2, c2}})
			}
			for k := 1; k < styles; k++ {
				s2 := (s + k) % styles
				c2 := (c + k) % contents
				content = append(content, triplet{ref: [2]int{s, c}, a: [2]int{s2, c}, b: [2]int{s2, c2}})
			}
		}
	}
	return style, content
}

// accuracy is the share of triplets where layer at t scores A above B, with its 95% Wilson
// interval's lower bound.
func accuracy(ctx context.Context, t *testing.T, s *session.Session, imgs [][]*session.Image, ts []triplet, layer, tt int) (acc, low float64) {
	t.Helper()
	score := func(x, y [2]int) float64 {
		r, err := s.Score(ctx, session.Request{A: imgs[x[0]][x[1]], B: imgs[y[0]][y[1]], Layer: layer, T: tt, Metric: session.AAS, Token: -1})
		if err != nil {
			t.Fatal(err)
		}
		return r.Score
	}
	right := 0
	for _, tr := range ts {
		if score(tr.ref, tr.a) > score(tr.ref, tr.b) {
			right++
		}
	}
	n := float64(len(ts))
	acc = float64(right) / n
	const z = 1.96
	centre := (acc + z*z/(2*n)) / (1 + z*z/n)
	half := z / (1 + z*z/n) * math.Sqrt(acc*(1-acc)/n+z*z/(4*n*n))
	return acc, centre - half
}

// openSet opens a session on the embedded model name, unpacked under root, with the images of
// the held-back set in dir loaded, indexed [style][content].
func openSet(t *testing.T, root, dir, name string) (*session.Session, [][]*session.Image) {
	t.Helper()
	model, err := toysd.Dir(root, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.Open(t.Context(), session.Options{Model: model, Seed: session.DefaultSeed, Device: "cpu", Families: families.All()})
	enginetest.Check(t, err)
	t.Cleanup(func() { s.Close() })
	styles, _ := synth.Styles(synth.DefaultStyles)
	contents, _ := synth.Contents(synth.DefaultContents)
	imgs := make([][]*session.Image, len(styles))
	for i, st := range styles {
		for _, c := range contents {
			im, err := s.Load(filepath.Join(dir, st.Name, c.Name+".png"))
			if err != nil {
				t.Fatal(err)
			}
			imgs[i] = append(imgs[i], im)
		}
	}
	return s, imgs
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

// Cells of the layers × t maps in docs/toy-sd.md (measured on the same held-back set with
// `diffsim bench grid`), and what they showed there, trained against untrained:
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
	style, content := styleContentTriplets(synth.DefaultStyles, synth.DefaultContents)
	sets := map[string][]triplet{"style": style, "content": content}
	trained, timgs := openSet(t, root, dir, toysd.Name)
	untrained, uimgs := openSet(t, root, dir, toysd.UntrainedName)
	for _, c := range cells {
		ts := sets[c.set]
		at, lt := accuracy(t.Context(), t, trained, timgs, ts, layerIndex(t, trained, c.layer), c.t)
		au, lu := accuracy(t.Context(), t, untrained, uimgs, ts, layerIndex(t, untrained, c.layer), c.t)
		msg := fmt.Sprintf("%s at %s, t=%d (%d triplets): trained %.3f (95%% lower bound %.3f), untrained %.3f (%.3f)", c.set, c.layer, c.t, len(ts), at, lt, au, lu)
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
