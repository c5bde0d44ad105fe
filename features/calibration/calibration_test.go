package calibration

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestNewCell(t *testing.T) {
	c := NewCell(1, 100, "aas", []float64{0.5, 0.9, 0.7, math.NaN(), 0.6, 0.8})
	if c.N != 5 || !near(c.Mean, 0.7) || !near(c.Std, math.Sqrt(0.025)) {
		t.Errorf("cell %+v: want n 5, mean 0.7, std %v", c, math.Sqrt(0.025))
	}
	if len(c.Q) != 100/QuantileStep+1 || c.Q[0] != 0.5 || c.Q[len(c.Q)-1] != 0.9 || !near(c.Q[len(c.Q)/2], 0.7) {
		t.Errorf("quantiles %v", c.Q)
	}
	if !near(c.StdErr(), c.Std/math.Sqrt(5)) {
		t.Errorf("standard error %v", c.StdErr())
	}
	if e := NewCell(0, 0, "aas", []float64{math.NaN()}); e.N != 0 || !math.IsNaN(e.Rescale(0.5)) || !math.IsNaN(e.Percentile(0.5)) {
		t.Errorf("empty cell %+v calibrates", e)
	}
}

// TestRescaleAndPercentile: the mean unrelated pair rescales to 0 and identical images to
// 1, for higher- and lower-is-better metrics alike; percentiles read the distribution.
func TestRescaleAndPercentile(t *testing.T) {
	var xs []float64
	for i := range 101 {
		xs = append(xs, 0.9+0.0005*float64(i)) // 0.9 … 0.95, mean 0.925
	}
	c := NewCell(0, 0, "aas", xs)
	for _, tc := range []struct{ s, rescaled, pct float64 }{
		{0.925, 0, 50},
		{1, 1, 100},
		{0.85, -1, 0},
		{0.9125, -1.0 / 6, 25},
		{0.95, 1.0 / 3, 100},
	} {
		if got := c.Rescale(tc.s); !near(got, tc.rescaled) {
			t.Errorf("Rescale(%v) = %v, want %v", tc.s, got, tc.rescaled)
		}
		if got := c.Percentile(tc.s); math.Abs(got-tc.pct) > 1e-6 {
			t.Errorf("Percentile(%v) = %v, want %v", tc.s, got, tc.pct)
		}
	}
	var ms []float64
	for i := range 101 {
		ms = append(ms, 0.1+0.001*float64(i)) // mean 0.15
	}
	m := NewCell(0, 0, "mse", ms)
	for _, tc := range []struct{ s, rescaled, pct float64 }{
		{0.15, 0, 50},
		{0, 1, 100}, // identical
		{0.3, -1, 0},
		{0.125, 1.0 / 6, 75},
	} {
		if got := m.Rescale(tc.s); !near(got, tc.rescaled) {
			t.Errorf("mse Rescale(%v) = %v, want %v", tc.s, got, tc.rescaled)
		}
		if got := m.Percentile(tc.s); math.Abs(got-tc.pct) > 1e-6 {
			t.Errorf("mse Percentile(%v) = %v, want %v", tc.s, got, tc.pct)
		}
	}
	if v := NewCell(0, 0, "aas", []float64{1, 1, 1}).Rescale(1); !math.IsNaN(v) {
		t.Errorf("a baseline already at 1 (text cross-attention) rescales to %v, want NaN", v)
	}
}

// TestRescalingKeepsRankingAndDecisions: at one layer, t and metric, rescaling and
// percentiles are monotone in the score, so a ranking by rescaled score is the ranking by
// score (in the metric's direction), and every benchmark decision (is A closer to P than
// to N?) comes out the same: accuracy cannot change.
func TestRescalingKeepsRankingAndDecisions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, metric := range []string{"aas", "cos", "mse"} {
		var base []float64
		for range 64 {
			base = append(base, 0.5+0.3*r.Float64())
		}
		c := NewCell(0, 0, metric, base)
		higher := metric != "mse"
		scores := make([]float64, 200)
		for i := range scores {
			scores[i] = r.Float64()
		}
		byScore := make([]int, len(scores))
		for i := range byScore {
			byScore[i] = i
		}
		byRescaled := slices.Clone(byScore)
		slices.SortStableFunc(byScore, func(i, j int) int {
			if higher {
				return cmpDesc(scores[i], scores[j])
			}
			return -cmpDesc(scores[i], scores[j])
		})
		slices.SortStableFunc(byRescaled, func(i, j int) int { return cmpDesc(c.Rescale(scores[i]), c.Rescale(scores[j])) })
		if !slices.Equal(byScore, byRescaled) {
			t.Errorf("%s: ranking by rescaled score differs from ranking by score", metric)
		}
		// Triplet decisions, as bench takes them: the positive is closer than the negative.
		for i := 0; i+1 < len(scores); i += 2 {
			p, n := scores[i], scores[i+1]
			raw := p > n
			if !higher {
				raw = p < n
			}
			if cal := c.Rescale(p) > c.Rescale(n); cal != raw {
				t.Errorf("%s: decision on %v vs %v flips when rescaled", metric, p, n)
			}
			if c.Percentile(p) < c.Percentile(n) && raw {
				t.Errorf("%s: percentile orders %v and %v against their scores", metric, p, n)
			}
		}
	}
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// TestAtInterpolates: a timestep between two built ones gets a cell between theirs;
// outside the range or at a layer or metric not built, none.
func TestAtInterpolates(t *testing.T) {
	b := &Baseline{Version: Version, Key: "k", Timesteps: []int{100, 200}, Cells: []Cell{
		NewCell(0, 200, "aas", []float64{0.8, 0.9}),
		NewCell(0, 100, "aas", []float64{0.6, 0.7}),
	}}
	b.Sort()
	c, ok := b.At(0, 150, "aas")
	if !ok || !c.Interpolated || !near(c.Mean, 0.75) || !near(c.Q[0], 0.7) || c.N != 2 {
		t.Errorf("At(150) = %+v, %v", c, ok)
	}
	if c, ok := b.At(0, 100, "aas"); !ok || c.Interpolated || !near(c.Mean, 0.65) {
		t.Errorf("At(100) = %+v, %v", c, ok)
	}
	for _, q := range []struct {
		layer, t int
		metric   string
	}{{0, 50, "aas"}, {0, 250, "aas"}, {1, 150, "aas"}, {0, 150, "mse"}} {
		if _, ok := b.At(q.layer, q.t, q.metric); ok {
			t.Errorf("At(%+v) found a cell", q)
		}
	}
	one := &Baseline{Version: Version, Key: "k", Timesteps: []int{0}, NoTimesteps: true, Cells: []Cell{NewCell(0, 0, "cos", []float64{0.1, 0.2})}}
	if _, ok := one.At(0, 401, "cos"); !ok {
		t.Error("a model without timesteps: its one cell serves every t")
	}
	single := &Baseline{Version: Version, Key: "k", Timesteps: []int{101}, Cells: []Cell{NewCell(0, 101, "cos", []float64{0.1, 0.2})}}
	if _, ok := single.At(0, 401, "cos"); ok {
		t.Error("a baseline built at t=101 only answered for t=401")
	}
	if _, ok := single.At(0, 101, "cos"); !ok {
		t.Error("a baseline built at t=101 only did not answer for t=101")
	}
}

func TestEncodeDecode(t *testing.T) {
	b := &Baseline{Version: Version, Key: "abc", Model: "m", Source: "src", Pairs: 3, Images: 3,
		Layers: []string{"l0"}, Timesteps: []int{0, 100}, Metrics: []string{"aas"},
		Cells: []Cell{NewCell(0, 100, "aas", []float64{0.123456789, 0.2, 0.3}), NewCell(0, 0, "aas", []float64{0.5, 0.6})}}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != "abc" || len(got.Cells) != 2 || got.Cells[0].T != 0 || got.Cells[1].Q[0] != 0.1234568 {
		t.Errorf("round trip: %+v", got)
	}
	again, _ := got.Encode()
	if !bytes.Equal(again, data) {
		t.Errorf("encoding is not stable:\n%s\n%s", data, again)
	}
	for _, bad := range []string{`{`, `{"version":99,"key":"k"}`, `{"version":1}`, `{"version":1,"key":"k","timesteps":[5,1]}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted it", bad)
		}
	}
}
