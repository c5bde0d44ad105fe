package session

import (
	"math"

	"github.com/diffsim/diffsim/features"
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
