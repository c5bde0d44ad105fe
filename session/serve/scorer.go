package serve

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session"
)

// Scorer scores pairs on a server for session/bench (it has bench.Scorer's methods): every
// Score is one POST /v1/score with the client's Spec, and the server batches and caches the
// features. Images are still read here, so an unreadable file fails in Load with the error a
// local session gives (bench skips such decisions with that reason, byte for byte as locally).
type Scorer struct {
	Client *Client
	Spec   Spec // the model; each request restarts its keep-alive, so a run keeps it loaded
	// Images bounds the image files Load reads, as a local session's Options.Images does.
	Images imagefile.Limits
}

// Load reads and decodes path as a local session would, for its hash and its errors; the
// pixels are dropped, because the server reads the file itself.
func (s *Scorer) Load(path string) (*session.Image, error) {
	img, hash, err := imagefile.Load(context.Background(), path, s.Images)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	return &session.Image{Path: path, Hash: hash, W: b.Dx(), H: b.Dy()}, nil
}

// PrefetchImages does nothing: the server computes a pair's missing features in one batched
// forward when asked for its score, and keeps them for the next pair.
func (s *Scorer) PrefetchImages(context.Context, int, ...*session.Image) error { return nil }

// Score asks the server for req's score. The layer goes by index and t as given, so the
// server resolves them to exactly what the caller resolved.
func (s *Scorer) Score(ctx context.Context, req session.Request) (session.Result, error) {
	start := time.Now()
	t := req.T
	r, err := s.Client.Score(ctx, ScoreRequest{
		Spec:   s.Spec,
		Select: Select{Layer: strconv.Itoa(req.Layer), T: &t, Metric: string(req.Metric)},
		ImageA: req.A.Path, ImageB: req.B.Path,
	})
	if err != nil {
		return session.Result{}, err
	}
	res := session.Result{
		Req: req, Score: value(r.Score), AtoB: value(r.AtoB), BtoA: value(r.BtoA),
		Metric: r.Metric, HigherIsBetter: r.HigherIsMoreSimilar,
		FeatureCosine: value(r.FeatureCosine), MSE: value(r.MSE), Global: value(r.GlobalCosine),
		Cached: r.Cached, Elapsed: time.Since(start),
	}
	if r.Meaningless != nil {
		res.Meaningless = *r.Meaningless
	}
	return res, nil
}

// value undoes session's finite: JSON null is NaN.
func value(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
