package api

import (
	"math"
	"slices"
	"strings"

	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/schedule"
)

// Record is the one JSON record of a score: `score --json` prints one, /v1/score answers with
// one (the same bytes for the same request), `sweep`, `rank` and `video` print lists of them or
// their parts, and the explorer's export writes one. Keys are snake_case and always present; a
// value that does not apply is null (a global embedding the model lacks, t for a model without
// timesteps, a score that is not a number), never a sentinel such as 0 or -1, so scripts test
// one thing. Numbers are Floats: ±Inf is "+Inf" or "-Inf".
type Record struct {
	ImageA string `json:"image_a"`
	ImageB string `json:"image_b"`
	Setup
	Point
	Score Float `json:"score"`
	AtoB  Float `json:"a_to_b"`
	BtoA  Float `json:"b_to_a"`
	// Baselines at the same layer and t, whatever the metric: the pixel-aligned cosine of the
	// attention outputs, their mean squared error, and the cosine of the model's global
	// embedding (null when it has none).
	FeatureCosine Float `json:"feature_cosine"`
	MSE           Float `json:"mse"`
	GlobalCosine  Float `json:"global_cosine"`
	// Meaningless says why the score carries no image information (cross-attention on text);
	// null when it does.
	Meaningless *string `json:"meaningless"`
	// What a baseline of unrelated pairs of images says about the score (diffsim baseline
	// build; features/calibration): the score rescaled so that 0 is a typical unrelated pair
	// and 1 identical images (higher is more similar, whatever the metric), the percentage
	// of unrelated pairs less similar, and which baseline says so. Null without a baseline
	// for this model and its settings, or where it has no cell. (Pointers, not NaN Floats:
	// both are always finite when set, and records compare equal with reflect.DeepEqual.)
	Rescaled   *float64     `json:"rescaled"`
	Percentile *float64     `json:"percentile"`
	Baseline   *BaselineRef `json:"baseline"`
}

// BaselineRef names the baseline that calibrated a score, and its cell there.
type BaselineRef struct {
	Key    string  `json:"key"`    // the model's content and settings (diffsim baseline list)
	Source string  `json:"source"` // where its images came from
	Pairs  int     `json:"pairs"`  // unrelated pairs in the cell
	Mean   float64 `json:"mean"`   // their mean score at this layer, t and metric
	Std    float64 `json:"std"`    // and its spread
	// Interpolated says the cell lies between the two nearest timesteps built.
	Interpolated bool `json:"interpolated"`
}

// Calibrate adds what b says about the record's score; it leaves the keys null when b is
// nil, the score is not a number or b has no cell at the record's layer, t and metric.
func (r *Record) Calibrate(b *calibration.Baseline) {
	r.Rescaled, r.Percentile, r.Baseline = nil, nil, nil
	if b == nil || r.Score.IsNaN() || r.Meaningless != nil {
		return
	}
	t := 0
	if r.T != nil {
		t = *r.T
	}
	c, ok := b.Calibrate(r.LayerIndex, t, string(r.Metric), float64(r.Score))
	if !ok {
		return
	}
	r.Rescaled, r.Percentile = finite(c.Rescaled), finite(c.Percentile)
	r.Baseline = &BaselineRef{Key: b.Key, Source: b.Source, Pairs: c.Cell.N, Mean: c.Cell.Mean, Std: c.Cell.Std, Interpolated: c.Cell.Interpolated}
}

// finite is v, or nil (null) when it is not a number.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Setup is what every score of one run shares: the model, how it ran, and the metric. Commands
// that print many scores (sweep, rank, video) print it once.
type Setup struct {
	Model               string `json:"model"`
	ModelDescription    string `json:"model_description"`
	Metric              Metric `json:"metric"`
	HigherIsMoreSimilar bool   `json:"higher_is_more_similar"`
	Size                int    `json:"size"`
	Seed                int64  `json:"seed"`
	Device              string `json:"device"`
	Prompt              string `json:"prompt"`
	CFG                 bool   `json:"cfg"`
}

// Point is where in the model a score was taken: a layer and a timestep. T and Step are null
// for models without timesteps.
type Point struct {
	Layer      string `json:"layer"`
	LayerShort string `json:"layer_short"`
	LayerIndex int    `json:"layer_index"`
	T          *int   `json:"t"`
	Step       *int   `json:"step"`
}

// NewSetup describes a run of the model in info with metric m and conditioning c.
func NewSetup(info ModelInfo, m Metric, c Conditioning) Setup {
	if m == "" {
		m = AAS
	}
	return Setup{
		Model: info.Name, ModelDescription: info.Description, Metric: m,
		HigherIsMoreSimilar: m.HigherIsMoreSimilar(),
		Size:                info.Size, Seed: info.Seed, Device: info.Device, Prompt: c.Prompt, CFG: c.CFG,
	}
}

// NewPoint names layer (an index into info.Layers) and t; t is dropped when the model has no
// timesteps.
func NewPoint(info ModelInfo, layer, t int) Point {
	p := Point{LayerIndex: layer}
	if layer >= 0 && layer < len(info.Layers) {
		p.Layer, p.LayerShort = info.Layers[layer].Name, info.Layers[layer].Short
	}
	if info.Timesteps {
		p.T = &t
		// No reference step gives t = 0: the step is null there, as for models without
		// timesteps.
		if step := schedule.TToStep(t); step > 0 {
			p.Step = &step
		}
	}
	return p
}

// NewRecord is the record of r, measured with setup; the pair and the point come from the
// request r answers, the paths as the caller named them.
func NewRecord(info ModelInfo, setup Setup, r Result) Record {
	rec := Record{
		Setup: setup, Point: NewPoint(info, r.Req.Layer, r.Req.T),
		Score: Float(r.Score), AtoB: Float(r.AtoB), BtoA: Float(r.BtoA),
		FeatureCosine: Float(r.FeatureCosine), MSE: Float(r.MSE), GlobalCosine: Float(r.Global),
	}
	if r.Req.A != nil {
		rec.ImageA = r.Req.A.Path
	}
	if r.Req.B != nil {
		rec.ImageB = r.Req.B.Path
	}
	if r.Meaningless != "" {
		why := r.Meaningless
		rec.Meaningless = &why
	}
	rec.Calibrate(info.Baseline)
	return rec
}

// Sweep is a pair scored at every chosen layer × timestep: the setup once, then one record per
// layer and timestep (layer-major), each equal to `score --json` at that layer and t.
type Sweep struct {
	ImageA string `json:"image_a"`
	ImageB string `json:"image_b"`
	Setup
	Timesteps []int        `json:"timesteps"` // null for models without timesteps
	Layers    []SweepLayer `json:"layers"`
	Scores    []Record     `json:"scores"`
}

// SweepLayer is one row of a sweep.
type SweepLayer struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Short string `json:"short"`
	Kind  string `json:"kind"`
}

// Label is the row's name in tables and figures: the paper's short name first when it has one.
func (l SweepLayer) Label() string {
	if l.Short != "" {
		return l.Short + " " + l.Name
	}
	return l.Name
}

// At is the record of row li (an index into Layers) and column ti (into the timesteps).
func (sw Sweep) At(li, ti int) Record { return sw.Scores[li*sw.Columns()+ti] }

// Columns is the number of timesteps, 1 for a model without them.
func (sw Sweep) Columns() int { return max(len(sw.Timesteps), 1) }

// Ranked is one image of a ranking: its place and its record against the query.
type Ranked struct {
	Rank int `json:"rank"`
	Record
}

// Skipped is a file a ranking could not use, and why.
type Skipped struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// SortRanked orders a ranking, most similar first under the metric's direction (ties and
// scores that are not numbers by path, the latter last), and numbers it from 1.
func SortRanked(results []Ranked, higherIsMoreSimilar bool) {
	slices.SortStableFunc(results, func(x, y Ranked) int {
		xs, ys := float64(x.Score), float64(y.Score)
		switch {
		case math.IsNaN(xs) != math.IsNaN(ys):
			if math.IsNaN(xs) {
				return 1
			}
			return -1
		case xs == ys || (math.IsNaN(xs) && math.IsNaN(ys)):
			return strings.Compare(x.ImageB, y.ImageB)
		case (xs > ys) == higherIsMoreSimilar:
			return -1
		}
		return 1
	})
	for i := range results {
		results[i].Rank = i + 1
	}
}

// SortSkipped orders skipped files by path.
func SortSkipped(s []Skipped) {
	slices.SortFunc(s, func(x, y Skipped) int { return strings.Compare(x.Path, y.Path) })
}
