package session

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image"
	"slices"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"

	"github.com/diffsim/diffsim/features"
)

func TestParseTimesteps(t *testing.T) {
	for _, tc := range []struct {
		in    string
		steps bool
		want  []int
		bad   bool
	}{
		{in: "100,400", want: []int{100, 400}},
		{in: "400, 100,100", want: []int{100, 400}},
		{in: DefaultSweepT, want: []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900}},
		{in: "0:900:100,999", want: []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999}},
		{in: "5:7", want: []int{5, 6, 7}},
		{in: "1000", bad: true},
		{in: "-1", bad: true},
		{in: "9:1", bad: true},
		{in: "0:10:0", bad: true},
		{in: "a", bad: true},
		{in: "1:2:3:4", bad: true},
		{in: "", bad: true},
		{in: "900,500", steps: true, want: []int{101, 501}},
		{in: "1,2", steps: true, want: []int{999}}, // steps 1 and 2 are both t=999
		{in: "0", steps: true, bad: true},
		{in: "1001", steps: true, bad: true},
	} {
		parse, flag := ParseTimesteps, "--t"
		if tc.steps {
			parse, flag = ParseSteps, "--step"
		}
		got, err := parse(tc.in)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), flag) || !errors.Is(err, api.ErrUsage) {
				t.Errorf("%s %q = %v, %v; want a usage error naming %s", flag, tc.in, got, err, flag)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %q = %v, %v; want %v", flag, tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseTimesteps(f *testing.F) {
	for _, s := range []string{"100,400", "0:999:100", "1:2:3:4", ",,", "0:999:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimesteps(s)
		if err != nil {
			return
		}
		if len(got) == 0 || !slices.IsSorted(got) || got[0] < 0 || got[len(got)-1] > 999 {
			t.Fatalf("ParseTimesteps(%q) = %v", s, got)
		}
	})
}

// countingModel counts the images a model runs, to check what the session batches.
type countingModel struct {
	features.Model
	images, runs int
}

func (m *countingModel) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	m.images += len(imgs)
	m.runs++
	return m.Model.Extract(ctx, imgs, t, seed)
}

// countingSession opens the built-in model at 64 px with a counter around it.
func countingSession(t testing.TB) (*Session, *countingModel) {
	t.Helper()
	cm := &countingModel{}
	s, err := Open(context.Background(), Options{
		Spec: testSpec(func(s *api.Spec) { s.Model = "builtin"; s.Size = 64 }), Families: families.All(),
		OpenModel: func(ctx context.Context, rt Runtime, o Options) (features.Model, error) {
			m, err := OpenModel(ctx, rt, o)
			cm.Model = m
			return cm, err
		}})
	enginetest.Check(t, err)
	t.Cleanup(func() { s.Close() })
	return s, cm
}

// TestSweep: a sweep over L layers and T timesteps runs the network T times, each run a batch of
// the two images, and each of its records equals the record of the same single score.
func TestSweep(t *testing.T) {
	s, cm := countingSession(t)
	a, b := load(t, s, "grass.png"), load(t, s, "gravel.png")
	ts := []int{0, 250, 999}
	steps := 0
	sw, err := s.Sweep(t.Context(), a, b, nil, ts, api.MSE, func() { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	layers := len(s.Info().Layers)
	if len(sw.Layers) != layers || len(sw.Scores) != layers*len(ts) || steps != len(ts) || !slices.Equal(sw.Timesteps, ts) {
		t.Fatalf("sweep: %d layers, %d scores, %d steps, timesteps %v; want %d, %d, %d, %v", len(sw.Layers), len(sw.Scores), steps, sw.Timesteps, layers, layers*len(ts), len(ts), ts)
	}
	if f := s.Stats().Forwards; f != len(ts) || cm.runs != len(ts) || cm.images != 2*len(ts) {
		t.Errorf("%d layers × %d timesteps: %d forwards, %d runs of %d images; want %d runs of 2 images each", layers, len(ts), f, cm.runs, cm.images, len(ts))
	}
	for li := range sw.Layers {
		for ti, tt := range ts {
			got := sw.At(li, ti)
			r, err := s.Score(t.Context(), api.Request{A: a, B: b, Layer: li, T: tt, Metric: api.MSE, Token: -1})
			if err != nil {
				t.Fatal(err)
			}
			want := api.RecordOf(s, r)
			if got.Score != want.Score || *got.T != tt || got.LayerIndex != li || got.FeatureCosine != want.FeatureCosine || got.Metric != api.MSE {
				t.Errorf("layer %d t=%d: sweep %+v, score %+v", li, tt, got, want)
			}
		}
	}

	var table, csvOut bytes.Buffer
	if err := sw.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 1+1+layers+1 || !strings.Contains(lines[0], "lower = more similar") || !strings.Contains(lines[1], "t=999") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := sw.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	// t = 0 has no reference step (t = 1001 − step for steps 2…1000): its step cell is empty.
	rows, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil || len(rows) != 1+layers*len(ts) || rows[0][3] != "t" || rows[1][3] != "0" || rows[1][4] != "" || rows[3][3] != "999" {
		t.Errorf("csv (%v): %v", err, rows)
	}
}

func BenchmarkSweep(b *testing.B) {
	s, _ := countingSession(b)
	a, _ := s.Load("../testdata/samples/grass.png")
	c, _ := s.Load("../testdata/samples/gravel.png")
	ts := []int{100, 400, 700}
	b.ReportAllocs()
	start := s.Stats().Forwards
	for b.Loop() {
		// the session caches features per t: move the grid each loop so every loop runs the network
		if _, err := s.Sweep(b.Context(), a, c, nil, ts, api.AAS, nil); err != nil {
			b.Fatal(err)
		}
		for i := range ts {
			ts[i] = (ts[i] + 1) % 1000
		}
	}
	b.ReportMetric(float64(s.Stats().Forwards-start)/float64(b.N), "forwards/op")
}
