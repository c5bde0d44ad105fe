// Package calibration puts a raw score on a scale a person can read: against the scores of
// unrelated pairs of images (a baseline), as BERTScore does for its narrow band of cosines.
// A baseline holds, for every layer, timestep and metric of one model and its settings, the
// distribution of the scores of random pairs of unrelated images: their mean, spread,
// quantiles and count. From it a score gets
//
//   - its rescaled value, (s − b) / (1 − b) with b the baseline's mean: 0 is a typical
//     unrelated pair, 1 identical images (for a lower-is-better metric such as MSE, whose
//     ideal is 0, (b − s) / b, so that higher is more similar here too);
//   - its percentile: the share of unrelated pairs less similar than it.
//
// Both are monotone in the score at a fixed layer, timestep and metric, so rankings and
// benchmark decisions do not change; what changes is that layers, whose raw scores live in
// different narrow bands, become comparable. The package is a leaf: plain values and JSON,
// so the explorer and the API can use it without the runtime.
package calibration

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Version is the baseline file format.
const Version = 1

// QuantileStep is the spacing of the stored quantiles, in percent: 0, 5, …, 100.
const QuantileStep = 5

// Baseline is the distribution of scores of unrelated pairs for one model and its settings.
type Baseline struct {
	Version int `json:"version"`
	// Key identifies the model's content and the settings scores depend on (size, seed,
	// conditioning, adapter): a baseline applies to scores with the same key only.
	Key              string `json:"key"`
	Model            string `json:"model"` // as it was named when the baseline was built
	ModelDescription string `json:"model_description"`
	Size             int    `json:"size"`
	Seed             int64  `json:"seed"`
	Prompt           string `json:"prompt"`
	CFG              bool   `json:"cfg"`
	// Source is where the images came from: a folder, or the built-in reference set.
	Source    string     `json:"source"`
	Images    int        `json:"images"` // distinct images scored
	Pairs     int        `json:"pairs"`  // unrelated pairs per cell (fewer where a score was not a number)
	Created   *time.Time `json:"created,omitempty"`
	Layers    []string   `json:"layers"`    // layer names, by index
	Timesteps []int      `json:"timesteps"` // ascending; [0] for models without timesteps
	// NoTimesteps says the model has none: its cells at t = 0 serve every t.
	NoTimesteps bool     `json:"no_timesteps,omitempty"`
	Metrics     []string `json:"metrics"`
	Cells       []Cell   `json:"cells,omitempty"`
}

// Cell is the baseline of one layer, timestep and metric.
type Cell struct {
	Layer  int     `json:"layer"`
	T      int     `json:"t"`
	Metric string  `json:"metric"`
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"` // sample standard deviation (n − 1)
	// Q are the quantiles at 0, QuantileStep, …, 100 percent (linear interpolation between
	// order statistics, numpy's default).
	Q []float64 `json:"q"`
	// Interpolated says the cell was interpolated between the two nearest timesteps built.
	Interpolated bool `json:"interpolated,omitempty"`
}

// higherIsMoreSimilar is the direction of a metric: only MSE is lower-is-better.
func higherIsMoreSimilar(metric string) bool { return metric != "mse" }

// NewCell summarises the scores of unrelated pairs at one layer, timestep and metric.
// Scores that are not numbers are left out; a cell of no scores has N = 0.
func NewCell(layer, t int, metric string, scores []float64) Cell {
	c := Cell{Layer: layer, T: t, Metric: metric}
	var xs []float64
	for _, s := range scores {
		if !math.IsNaN(s) && !math.IsInf(s, 0) {
			xs = append(xs, s)
		}
	}
	c.N = len(xs)
	if c.N == 0 {
		return c
	}
	slices.Sort(xs)
	var sum float64
	for _, x := range xs {
		sum += x
	}
	c.Mean = sum / float64(c.N)
	if c.N > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - c.Mean) * (x - c.Mean)
		}
		c.Std = math.Sqrt(ss / float64(c.N-1))
	}
	for p := 0; p <= 100; p += QuantileStep {
		c.Q = append(c.Q, quantile(xs, float64(p)/100))
	}
	return c
}

// quantile of sorted xs at fraction f, linear between order statistics.
func quantile(xs []float64, f float64) float64 {
	pos := f * float64(len(xs)-1)
	i := int(math.Floor(pos))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}

// StdErr is the standard error of the cell's mean: how far another set of unrelated pairs
// of the same size would typically move the baseline.
func (c Cell) StdErr() float64 {
	if c.N < 2 {
		return math.NaN()
	}
	return c.Std / math.Sqrt(float64(c.N))
}

// Rescale puts score s on the baseline's scale: 0 at the mean unrelated pair, 1 at
// identical images, higher is more similar whatever the metric. NaN when the cell is
// empty or the baseline is already at the ideal (a layer whose every pair scores 1).
func (c Cell) Rescale(s float64) float64 {
	if c.N == 0 || math.IsNaN(s) {
		return math.NaN()
	}
	ideal := 1.0
	if !higherIsMoreSimilar(c.Metric) {
		ideal = 0
	}
	d := ideal - c.Mean
	if math.Abs(d) < 1e-12 {
		return math.NaN()
	}
	return (s - c.Mean) / d
}

// Percentile is the share of unrelated pairs (0–100) less similar than score s, read from
// the quantiles with linear interpolation between them.
func (c Cell) Percentile(s float64) float64 {
	if c.N == 0 || len(c.Q) < 2 || math.IsNaN(s) {
		return math.NaN()
	}
	below := cdf(c.Q, s)
	if !higherIsMoreSimilar(c.Metric) {
		return 100 - below
	}
	return below
}

// PercentileWords says where a score stands among unrelated pairs, for a person: "more similar
// than 72% of unrelated pairs", or every/none at the ends; "" for NaN (no baseline).
func PercentileWords(p float64) string {
	switch {
	case math.IsNaN(p):
		return ""
	case p >= 99.5:
		return "more similar than every unrelated pair"
	case p < 0.5:
		return "less similar than every unrelated pair"
	}
	return fmt.Sprintf("more similar than %.0f%% of unrelated pairs", p)
}

// cdf is the percent of the distribution whose quantiles are q lying below s.
func cdf(q []float64, s float64) float64 {
	step := 100 / float64(len(q)-1)
	switch {
	case s < q[0]:
		return 0
	case s >= q[len(q)-1]:
		return 100
	}
	// The last quantile at or below s, so that a run of equal quantiles counts wholly below.
	i, _ := slices.BinarySearchFunc(q, s, func(x, t float64) int {
		if x <= t {
			return -1
		}
		return 1
	})
	i-- // q[i] <= s < q[i+1]
	if q[i+1] == q[i] {
		return float64(i+1) * step
	}
	return (float64(i) + (s-q[i])/(q[i+1]-q[i])) * step
}

// At is the cell for layer, t and metric: the one built at t, or one interpolated linearly
// between the two nearest timesteps built (marked Interpolated). ok is false when the
// baseline has no such layer or metric, or t lies outside the timesteps built.
func (b *Baseline) At(layer, t int, metric string) (Cell, bool) {
	if b == nil || len(b.Timesteps) == 0 {
		return Cell{}, false
	}
	if b.NoTimesteps {
		return b.cell(layer, b.Timesteps[0], metric)
	}
	i, found := slices.BinarySearch(b.Timesteps, t)
	if found {
		return b.cell(layer, t, metric)
	}
	if i == 0 || i == len(b.Timesteps) {
		return Cell{}, false
	}
	t0, t1 := b.Timesteps[i-1], b.Timesteps[i]
	c0, ok0 := b.cell(layer, t0, metric)
	c1, ok1 := b.cell(layer, t1, metric)
	if !ok0 || !ok1 || len(c0.Q) != len(c1.Q) {
		return Cell{}, false
	}
	f := float64(t-t0) / float64(t1-t0)
	lerp := func(x, y float64) float64 { return x + f*(y-x) }
	c := Cell{Layer: layer, T: t, Metric: metric, N: min(c0.N, c1.N), Mean: lerp(c0.Mean, c1.Mean),
		Std: lerp(c0.Std, c1.Std), Interpolated: true, Q: make([]float64, len(c0.Q))}
	for k := range c.Q {
		c.Q[k] = lerp(c0.Q[k], c1.Q[k])
	}
	return c, true
}

func (b *Baseline) cell(layer, t int, metric string) (Cell, bool) {
	i, found := slices.BinarySearchFunc(b.Cells, Cell{Layer: layer, T: t, Metric: metric}, compareCells)
	if !found || b.Cells[i].N == 0 {
		return Cell{}, false
	}
	return b.Cells[i], true
}

func compareCells(x, y Cell) int {
	return cmp.Or(cmp.Compare(x.Layer, y.Layer), cmp.Compare(x.T, y.T), cmp.Compare(x.Metric, y.Metric))
}

// Sort orders the cells by layer, timestep and metric, as At expects.
func (b *Baseline) Sort() { slices.SortFunc(b.Cells, compareCells) }

// Name says which baseline this is, for people: "builtin reference set, 256 pairs".
func (b *Baseline) Name() string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf("%s, %d pairs", b.Source, b.Pairs)
}

// ShortKey is the first characters of the key, as `baseline list` prints it.
func (b *Baseline) ShortKey() string {
	if len(b.Key) > 12 {
		return b.Key[:12]
	}
	return b.Key
}

// Decode reads a baseline file's bytes and checks what At relies on.
func Decode(data []byte) (*Baseline, error) {
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("not a diffsim baseline: %w", err)
	}
	if b.Version != Version {
		return nil, fmt.Errorf("baseline format %d, this diffsim reads %d (build it again with diffsim baseline build)", b.Version, Version)
	}
	if !slices.IsSorted(b.Timesteps) || b.Key == "" {
		return nil, fmt.Errorf("not a diffsim baseline: no key, or timesteps out of order")
	}
	b.Sort()
	return &b, nil
}

// Encode writes the baseline as indented JSON, numbers rounded to 7 significant digits
// (far below any baseline's standard error), so files are small and stable.
func (b *Baseline) Encode() ([]byte, error) {
	c := *b
	c.Cells = make([]Cell, len(b.Cells))
	for i, x := range b.Cells {
		x.Mean, x.Std = round7(x.Mean), round7(x.Std)
		q := make([]float64, len(x.Q))
		for k, v := range x.Q {
			q[k] = round7(v)
		}
		x.Q = q
		c.Cells[i] = x
	}
	c.Sort()
	// The header indented, one cell per line: small, and a diff shows which cells changed.
	cells := c.Cells
	c.Cells = nil
	head, err := json.MarshalIndent(&c, "", " ")
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(bytes.TrimSuffix(head, []byte("\n}")))
	out.WriteString(",\n \"cells\": [")
	for i, x := range cells {
		line, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteByte(',')
		}
		out.WriteString("\n  ")
		out.Write(line)
	}
	out.WriteString("\n ]\n}\n")
	return out.Bytes(), nil
}

func round7(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	mag := math.Pow(10, 6-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*mag) / mag
}

// Score is what a baseline says about one score.
type Score struct {
	Rescaled   float64 // NaN when the baseline cannot rescale it
	Percentile float64 // NaN likewise
	Cell       Cell
}

// Calibrate is what the baseline says about score s at layer, t and metric; ok is false
// when the baseline has no cell there.
func (b *Baseline) Calibrate(layer, t int, metric string, s float64) (Score, bool) {
	c, ok := b.At(layer, t, metric)
	if !ok {
		return Score{Rescaled: math.NaN(), Percentile: math.NaN()}, false
	}
	return Score{Rescaled: c.Rescale(s), Percentile: c.Percentile(s), Cell: c}, true
}
