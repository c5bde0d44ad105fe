package ui

import (
	"errors"
	"fmt"
	"math"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/ui/internal/fake"
)

// Each component draws alone, at its own sizes, into its own golden files
// (testdata/component_*.golden; -update rewrites them).

// fakeScores are the fake model's layer scores at ts under metric m; close makes them all
// lie within 0.001 of 0.99, as a real model's do at late timesteps.
func fakeScores(ts []int, m api.Metric, close bool) map[scoreKey][]api.LayerScore {
	f := fake.New()
	out := map[scoreKey][]api.LayerScore{}
	for _, t := range ts {
		s := make([]api.LayerScore, len(f.Info().Layers))
		for i, l := range f.Info().Layers {
			v := fake.ScoreAt(i, t, m)
			if close {
				v = 0.99 + v/1000
			}
			s[i] = api.LayerScore{Layer: i, T: t, Score: v, Meaningless: !l.ImageKV}
		}
		out[scoreKey{t, m}] = s
	}
	return out
}

func TestSweepGolden(t *testing.T) {
	layers := fake.New().Info().Layers
	all := schedule.SweepTimesteps()
	tests := []struct {
		name   string
		w, h   int
		scores map[scoreKey][]api.LayerScore
		metric api.Metric
		keys   []string
	}{
		{"partial_80x18", 80, 18, fakeScores(all[:4], api.AAS, false), api.AAS, nil},
		{"full_cursor_moved_120x30", 120, 30, fakeScores(all, api.AAS, false), api.AAS, []string{"down", "down", "right", "end"}},
		{"mse_close_200x50", 200, 50, fakeScores(all, api.MSE, true), api.MSE, []string{"home"}},
		{"close_80x18", 80, 18, fakeScores(all, api.AAS, true), api.AAS, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sw := newSweep(NewStyles(true), layers, all)
			sw.SetSize(tc.w, tc.h)
			sw.SetData(sweepData{scores: tc.scores, metric: tc.metric, layer: 5, t: 401})
			sw.Focus()
			for _, k := range tc.keys {
				sw, _ = sw.Update(press(k))
			}
			golden(t, "component_sweep_"+tc.name, sw.View())
		})
	}
}

// TestSweepKeys: the sweep's cursor stays on the grid, Enter answers the cell under it and
// Esc asks to close; keys it does not know do nothing.
func TestSweepKeys(t *testing.T) {
	layers := fake.New().Info().Layers
	ts := schedule.SweepTimesteps()
	tests := []struct {
		keys     []string
		row, col int
		msg      tea.Msg
	}{
		{nil, 5, 4, nil},
		{[]string{"up", "up", "up", "up", "up", "up", "up"}, 0, 4, nil},
		{[]string{"down", "down", "down", "down"}, 7, 4, nil},
		{[]string{"home", "left"}, 5, 0, nil},
		{[]string{"end", "right"}, 5, 9, nil},
		{[]string{"left", "enter"}, 5, 3, sweepJumpMsg{layer: 5, t: 300}},
		{[]string{"esc"}, 5, 4, closeViewMsg{}},
		{[]string{"w"}, 5, 4, closeViewMsg{}},
		{[]string{"x"}, 5, 4, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.keys), func(t *testing.T) {
			sw := newSweep(NewStyles(true), layers, ts)
			sw.SetSize(120, 30)
			sw.SetData(sweepData{metric: api.AAS, layer: 5, t: 401})
			sw.Focus()
			var cmd tea.Cmd
			for _, k := range tc.keys {
				sw, cmd = sw.Update(press(k))
			}
			if sw.row != tc.row || sw.col != tc.col {
				t.Errorf("cursor at %d,%d, want %d,%d", sw.row, sw.col, tc.row, tc.col)
			}
			var got tea.Msg
			if cmd != nil {
				got = cmd()
			}
			if got != tc.msg {
				t.Errorf("message %#v, want %#v", got, tc.msg)
			}
		})
	}
}

func TestLayerListGolden(t *testing.T) {
	layers := fake.New().Info().Layers
	tests := []struct {
		name   string
		w, h   int
		scores []api.LayerScore
		metric api.Metric
		scale  barScale
	}{
		{"relative_32x12", 32, 12, fakeScores([]int{401}, api.AAS, false)[scoreKey{401, api.AAS}], api.AAS, scaleRelative},
		{"absolute_close_56x14", 56, 14, fakeScores([]int{401}, api.AAS, true)[scoreKey{401, api.AAS}], api.AAS, scaleAbsolute},
		{"relative_close_56x14", 56, 14, fakeScores([]int{401}, api.AAS, true)[scoreKey{401, api.AAS}], api.AAS, scaleRelative},
		{"mse_56x14", 56, 14, fakeScores([]int{401}, api.MSE, false)[scoreKey{401, api.MSE}], api.MSE, scaleRelative},
		{"not_computed_40x12", 40, 12, nil, api.AAS, scaleRelative},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ll := newLayerList(NewStyles(true), layers)
			ll.SetSize(tc.w, tc.h)
			ll.SetData(layerData{scores: tc.scores, selected: 5, t: 401, metric: tc.metric})
			ll.scale = tc.scale
			golden(t, "component_layers_"+tc.name, ll.View())
		})
	}
}

// TestLayerBarsGrowWithSimilarity: under MSE (lower is more similar) the most similar layer
// has the longest bar, as under AAS; the axis runs from least to most similar.
func TestLayerBarsGrowWithSimilarity(t *testing.T) {
	for _, m := range []api.Metric{api.AAS, api.MSE} {
		scores := fakeScores([]int{401}, m, false)[scoreKey{401, m}]
		ll := newLayerList(NewStyles(true), fake.New().Info().Layers)
		ll.SetData(layerData{scores: scores, t: 401, metric: m})
		left, right, ok := ll.axis()
		best, worst := math.Inf(-1), math.Inf(1)
		for _, s := range scores {
			if s.Meaningless {
				continue
			}
			v := s.Score
			if !m.HigherIsMoreSimilar() {
				v = -v
			}
			best, worst = max(best, v), min(worst, v)
		}
		if !m.HigherIsMoreSimilar() {
			best, worst = -best, -worst
		}
		if !ok || left != worst || right != best {
			t.Errorf("%s: axis %v → %v, want least similar %v → most similar %v", m, left, right, worst, best)
		}
	}
}

func TestLayerListMouseAndScale(t *testing.T) {
	ll := newLayerList(NewStyles(true), fake.New().Info().Layers)
	ll.SetSize(40, 14)
	ll.SetData(layerData{selected: 5, t: 401, metric: api.AAS})
	ll, _ = ll.Update(press("a"))
	if ll.scale != scaleAbsolute {
		t.Errorf("a: scale %v", ll.scale)
	}
	for _, tc := range []struct {
		msg  tea.Msg
		want tea.Msg
	}{
		// Layer 1 (text cross-attention) is folded away: the third row is layer 3.
		{tea.MouseClickMsg{Y: layerListHead + 2, Button: tea.MouseLeft}, layerSelectMsg{3}},
		{tea.MouseClickMsg{Y: layerListHead + 4, Button: tea.MouseLeft}, nil}, // the selected one
		{tea.MouseClickMsg{Y: 1, Button: tea.MouseLeft}, nil},                 // the title
		{tea.MouseWheelMsg{Button: tea.MouseWheelDown}, layerSelectMsg{6}},
		{tea.MouseWheelMsg{Button: tea.MouseWheelUp}, layerSelectMsg{4}},
	} {
		_, cmd := ll.Update(tc.msg)
		var got tea.Msg
		if cmd != nil {
			got = cmd()
		}
		if got != tc.want {
			t.Errorf("%#v: got %#v, want %#v", tc.msg, got, tc.want)
		}
	}
}

func TestTimelineGolden(t *testing.T) {
	points := map[int]float64{}
	for _, tt := range []int{1, 101, 201, 391, 401, 411, 501, 901} {
		points[tt] = fake.ScoreAt(5, tt, api.AAS)
	}
	points[601] = math.NaN()
	for _, tc := range []struct {
		name string
		tl   timeline
	}{
		{"points_80", timeline{st: NewStyles(true), t: 401, points: points, higher: true, timesteps: true}},
		{"points_200", timeline{st: NewStyles(true), t: 401, points: points, higher: true, timesteps: true}},
		{"empty_80", timeline{st: NewStyles(true), t: 0, points: map[int]float64{}, timesteps: true}},
		{"no_timesteps_80", timeline{st: NewStyles(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := 80
			if tc.name == "points_200" {
				w = 200
			}
			tc.tl.SetSize(w, 3)
			golden(t, "component_timeline_"+tc.name, tc.tl.View())
		})
	}
}

func TestTimelineMouse(t *testing.T) {
	tl := timeline{st: NewStyles(true), t: 401, timesteps: true}
	tl.SetSize(120, 3)
	for _, tc := range []struct {
		msg  tea.Msg
		want tea.Msg
	}{
		{tea.MouseClickMsg{X: tl.column(700), Y: 1, Button: tea.MouseLeft}, timeSelectMsg{tl.timeAt(tl.column(700))}},
		{tea.MouseClickMsg{X: tl.column(700), Y: 0, Button: tea.MouseLeft}, nil}, // the sparkline row
		{tea.MouseClickMsg{X: 2, Y: 1, Button: tea.MouseLeft}, nil},              // the label
		{tea.MouseWheelMsg{Button: tea.MouseWheelUp}, timeSelectMsg{411}},
		{tea.MouseWheelMsg{Button: tea.MouseWheelDown}, timeSelectMsg{391}},
	} {
		_, cmd := tl.Update(tc.msg)
		var got tea.Msg
		if cmd != nil {
			got = cmd()
		}
		if got != tc.want {
			t.Errorf("%#v: got %#v, want %#v", tc.msg, got, tc.want)
		}
	}
	tl.timesteps = false
	if _, cmd := tl.Update(tea.MouseWheelMsg{Button: tea.MouseWheelUp}); cmd != nil {
		t.Error("a model without timesteps answered the wheel")
	}
}

func TestScorePanelGolden(t *testing.T) {
	f := fake.New()
	info := f.Info()
	a, _ := f.Load("fake:a")
	b, _ := f.Load("fake:b")
	res, err := f.Score(t.Context(), api.Request{A: a, B: b, Layer: 5, T: 401, Metric: api.AAS, Token: 5})
	if err != nil {
		t.Fatal(err)
	}
	res.Elapsed = 0
	meaningless, _ := f.Score(t.Context(), api.Request{A: a, B: b, Layer: 1, T: 401, Metric: api.AAS, Token: 5})
	meaningless.Elapsed = 0 // wall time: a loaded machine (or -race) would change the golden
	for _, tc := range []struct {
		name    string
		res     *api.Result
		layer   int
		current bool
	}{
		{"result_34x11", &res, 5, true},
		{"updating_34x11", &res, 5, false},
		{"computing_56x11", nil, 5, false},
		{"meaningless_56x11", &meaningless, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w, h int
			fmt.Sscanf(tc.name[len(tc.name)-5:], "%dx%d", &w, &h)
			p := newScorePanel(NewStyles(true))
			p.SetData(scoreData{info: info, layer: info.Layers[tc.layer], res: tc.res, t: 401, metric: api.AAS})
			p.SetSize(w, h)
			golden(t, "component_score_"+tc.name, p.View())
		})
	}
}

func TestStatusBarGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    statusData
	}{
		{"ready", statusData{cache: "5 t computed · 5 runs "}},
		{"working", statusData{spinner: "⠋", working: "scoring Up0 t=401 (1.2s)", cache: "5 t computed · 5 runs "}},
		{"error", statusData{err: errors.New("layer scores t=401: out of memory\nwhile running"), cache: "5 t computed "}},
		{"notice", statusData{notice: "exported to diffsim-export/: a_vs_b.png and a_vs_b.json", cache: "5 t computed "}},
		{"long_path_wraps", statusData{notice: exportMsg{dir: "/tmp/a-rather-long-folder-name/with/several/levels/of/folders/diffsim-export",
			files: []string{"chelsea_vs_coffee_Up0_t401.png", "chelsea_vs_coffee_Up0_t401.json"}}.String(), cache: "5 t computed "}},
		{"long_error_wraps", statusData{err: errors.New(`t "1234": want a whole number from 0 to 999, or press t again and type one; the score stays at t=401 until then`), cache: "5 t computed "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := newStatusBar(NewStyles(true))
			sb.SetData(tc.d)
			sb.SetSize(80, 1)
			golden(t, "component_status_"+tc.name, sb.View())
		})
	}
}

func TestFitNumber(t *testing.T) {
	tests := []struct {
		v    float64
		dec  int
		w    int
		want string
	}{
		{0.97401, 4, 6, "0.9740"},
		{0.97401, 4, 5, ".9740"},
		{0.97401, 4, 4, ".974"},
		{0.97401, 4, 3, ".97"},
		{0.97401, 4, 2, ""},
		{-0.0123, 3, 5, "-.012"},
		{12.5, 2, 5, "12.50"},
		{12.5, 2, 4, ""},
	}
	for _, tc := range tests {
		if got := fitNumber(tc.v, tc.dec, tc.w); got != tc.want {
			t.Errorf("fitNumber(%v, %d, %d) = %q, want %q", tc.v, tc.dec, tc.w, got, tc.want)
		}
	}
}
