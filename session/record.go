package session

import (
	"math"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/calibration"
)

// Record is the one JSON record of a score: `score --json` prints one, `sweep`, `rank` and
// `video` print lists of them or their parts, and the explorer's export writes one. Keys are
// snake_case and always present; a value that does not apply is null (a global embedding the
// model lacks, t for a model without timesteps, a score that is not a number), never a
// sentinel such as 0 or -1, so scripts test one thing.
type Record struct {
	ImageA string `json:"image_a"`
	ImageB string `json:"image_b"`
	Setup
	Point
	Score *float64 `json:"score"`
	AtoB  *float64 `json:"a_to_b"`
	BtoA  *float64 `json:"b_to_a"`
	// Baselines at the same layer and t, whatever the metric: the pixel-aligned cosine of the
	// attention outputs, their mean squared error, and the cosine of the model's global
	// embedding (null when it has none).
	FeatureCosine *float64 `json:"feature_cosine"`
	MSE           *float64 `json:"mse"`
	GlobalCosine  *float64 `json:"global_cosine"`
	// Meaningless says why the score carries no image information (cross-attention on text);
	// null when it does.
	Meaningless *string `json:"meaningless"`
	// What a baseline of unrelated pairs of images says about the score (diffsim baseline
	// build; features/calibration): the score rescaled so that 0 is a typical unrelated pair
	// and 1 identical images (higher is more similar, whatever the metric), the percentage
	// of unrelated pairs less similar, and which baseline says so. Null without a baseline
	// for this model and its settings, or where it has no cell.
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
// nil, the score is null or b has no cell at the record's layer, t and metric.
func (r *Record) Calibrate(b *calibration.Baseline) {
	r.Rescaled, r.Percentile, r.Baseline = nil, nil, nil
	if b == nil || r.Score == nil || r.Meaningless != nil {
		return
	}
	t := 0
	if r.T != nil {
		t = *r.T
	}
	c, ok := b.Calibrate(r.LayerIndex, t, string(r.Metric), *r.Score)
	if !ok {
		return
	}
	r.Rescaled, r.Percentile = finite(c.Rescaled), finite(c.Percentile)
	r.Baseline = &BaselineRef{Key: b.Key, Source: b.Source, Pairs: c.Cell.N, Mean: c.Cell.Mean, Std: c.Cell.Std, Interpolated: c.Cell.Interpolated}
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

// NewSetup describes a run of the model in info with metric m and the given conditioning.
func NewSetup(info ModelInfo, m Metric, prompt string, cfg bool) Setup {
	if m == "" {
		m = AAS
	}
	return Setup{
		Model: info.Name, ModelDescription: info.Description, Metric: m,
		HigherIsMoreSimilar: m.HigherIsMoreSimilar(),
		Size:                info.Size, Seed: info.Seed, Device: info.Device, Prompt: prompt, CFG: cfg,
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
		if step := features.TToStep(t); step > 0 {
			p.Step = &step
		}
	}
	return p
}

// NewRecord is the record of r, measured with setup; the pair and the point come from the
// request r answers.
func NewRecord(info ModelInfo, setup Setup, r Result) Record {
	rec := Record{
		Setup: setup, Point: NewPoint(info, r.Req.Layer, r.Req.T),
		Score: finite(r.Score), AtoB: finite(r.AtoB), BtoA: finite(r.BtoA),
		FeatureCosine: finite(r.FeatureCosine), MSE: finite(r.MSE), GlobalCosine: finite(r.Global),
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
	return rec
}

// Setup describes this session's runs with metric m.
func (s *Session) Setup(m Metric) Setup {
	c := s.Conditioning()
	return NewSetup(s.Info(), m, c.Prompt, c.CFG)
}

// Record is r as the one JSON record, with this session's settings.
func (s *Session) Record(r Result) Record {
	return NewRecord(s.Info(), s.Setup(r.Req.Metric), r)
}

// finite is v, or nil (JSON null) when v is not a number: JSON has no NaN.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
