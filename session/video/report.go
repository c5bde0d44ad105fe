package video

import "github.com/diffsim/diffsim/api"

// Report is `video --json`: the clip, the setup and point every frame was scored with (the
// fields of api.Record), every frame's two scores, the clip's consistency, and what it cost
// (feature_extractions = frames run through the network).
type Report struct {
	Input string `json:"input"`
	api.Setup
	api.Point
	Every              int     `json:"every"`
	MaxFrames          *int    `json:"max_frames"` // null: all frames
	FeatureExtractions int     `json:"feature_extractions"`
	NetworkRuns        int     `json:"network_runs"`
	Meaningless        *string `json:"meaningless"` // why the layer's scores say nothing; null when they do
	Result
}

// NewReport assembles the report of res, scored by s at layer and t; every and maxFrames are
// the options the clip was opened with.
func NewReport(s api.Scorer, input string, layer, t int, m api.Metric, every, maxFrames int, res Result) Report {
	st := s.Stats()
	r := Report{
		Input: input, Setup: api.SetupOf(s, m), Point: api.NewPoint(s.Info(), layer, t),
		Every: every, FeatureExtractions: st.Extracted, NetworkRuns: st.Forwards, Result: res,
	}
	if maxFrames > 0 {
		r.MaxFrames = &maxFrames
	}
	if res.Meaningless != "" {
		why := res.Meaningless
		r.Meaningless = &why
	}
	return r
}
