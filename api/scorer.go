package api

import "context"

// Scorer is the one way to score, whether the model runs in this process (*session.Session)
// or in `diffsim serve` (serve.Remote). Commands and the explorer choose an implementation
// once and then have one path; what an implementation can do beyond scoring is in
// Info().Caps, never found by type assertion.
//
// Images are loaded through the scorer (Load), so both implementations identify them alike
// (the sha256 of the file's bytes) and fail alike on a bad file; records carry each image's
// path as the caller gave it.
type Scorer interface {
	// Info describes the model, its layers, defaults and capabilities.
	Info() ModelInfo
	// Resolve is Info().Resolve: a selection of layer, t or step, and metric, resolved.
	Resolve(sel Selection) (Target, error)
	Load(path string) (*Image, error)
	Score(ctx context.Context, req Request) (Result, error)
	// Sweep scores a pair at each of layers (nil: all) × each timestep in ts (ignored by
	// models without timesteps); afterStep is called after each timestep.
	Sweep(ctx context.Context, a, b *Image, layers, ts []int, m Metric, afterStep func()) (Sweep, error)
	// Rank scores files against query, most similar first (SortRanked), with the files that
	// could not be read; done is called once per file.
	Rank(ctx context.Context, query *Image, files []string, layer, t int, m Metric, done func()) ([]Ranked, []Skipped, error)
	// LayerScores scores every layer at t (one network run).
	LayerScores(ctx context.Context, a, b *Image, t int, m Metric) ([]LayerScore, error)
	// Prefetch computes the features at t of every image not cached, in one batch, so later
	// scores at t run no network.
	Prefetch(ctx context.Context, t int, imgs ...*Image) error
	// Cached reports whether both images' features at t are kept.
	Cached(a, b *Image, t int) bool
	Stats() Stats
	// Conditioning is the prompt scores use now; SetConditioning switches it (embedding the
	// prompt first), and fails with the reason when Info().Caps.PromptFixed says it cannot.
	Conditioning() Conditioning
	SetConditioning(ctx context.Context, c Conditioning) error
	Close() error
}

// SetupOf is the setup of s's scores with metric m.
func SetupOf(s Scorer, m Metric) Setup { return NewSetup(s.Info(), m, s.Conditioning()) }

// RecordOf is r as the one JSON record, with s's settings.
func RecordOf(s Scorer, r Result) Record { return NewRecord(s.Info(), SetupOf(s, r.Req.Metric), r) }
