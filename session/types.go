package session

import (
	"image"
	"time"

	"github.com/diffsim/diffsim/features"
)

// Metric is what a score measures.
type Metric string

// Metrics: the Aligned Attention Score, the pixel-aligned feature cosine it is compared with
// in the paper's ablation, and mean squared error (lower is more similar).
const (
	AAS    Metric = "aas"
	Cosine Metric = "cos"
	MSE    Metric = "mse"
)

// Metrics lists the metrics in the order the explorer cycles through them.
var Metrics = []Metric{AAS, Cosine, MSE}

// HigherIsMoreSimilar reports the direction of a metric.
func (m Metric) HigherIsMoreSimilar() bool { return m != MSE }

// ModelInfo describes the model a session holds: the family's description, with the device
// and seed the session runs it with. One type, features.ModelInfo, named here for callers.
type ModelInfo = features.ModelInfo

// Image is a decoded input image, identified by its content hash.
type Image struct {
	Path   string
	Hash   string // hex sha256 of the file bytes
	W, H   int    // original size
	Pixels image.Image
}

// Request names one score: a pair, a layer, a timestep and a metric.
type Request struct {
	A, B   *Image
	Layer  int
	T      int
	Metric Metric
	Token  int // token of A (spatial index) whose attention over B is returned; -1 for none
}

// Result answers a Request. Req is the request it answers, so a caller that has moved on can
// recognise and drop it.
type Result struct {
	Req Request

	Score, AtoB, BtoA float64
	Metric            Metric
	HigherIsBetter    bool
	Meaningless       string // non-empty when the score carries no image information, and why

	// Baselines beside the chosen metric at the same layer and t.
	FeatureCosine float64 // pixel-aligned cosine of the attention outputs
	MSE           float64
	Global        float64 // cosine of the model's global embedding; NaN when it has none

	MapA, MapB features.Map // per-token cosine maps (A's self vs cross-attended; B's likewise)
	AttnRow    features.Map // attention of Req.Token of A over B's tokens, head-averaged

	Cached  bool          // features came from the cache: no network run
	Elapsed time.Duration // wall time of this request
}

// LayerScore is one layer's score at a timestep, for the layer list and sweeps.
type LayerScore struct {
	Layer       int
	T           int
	Score       float64
	Meaningless bool
}

// Progress reports background work.
type Progress struct {
	What  string // "vae A", "unet t=401", …
	Done  int
	Total int
}

// Stats counts the work a session has done, for the status line and for tests.
type Stats struct {
	Forwards    int   // batched network runs
	Extracted   int   // images run through the network (a batch of two counts two)
	CacheHits   int   // feature lookups served from memory
	CacheBytes  int64 // memory held by cached features
	CacheBudget int64
}

// The methods the explorer and the headless commands use (implemented in session.go):
//
//	Open(ctx, Options) (*Session, error)
//	(*Session).Info() ModelInfo
//	(*Session).Load(path string) (*Image, error)
//	(*Session).Score(ctx, Request) (Result, error)
//	(*Session).LayerScores(ctx, a, b *Image, t int, m Metric) ([]LayerScore, error)
//	(*Session).Prefetch(ctx, a, b *Image, t int) error
//	(*Session).PrefetchImages(ctx, t int, imgs ...*Image) error
//	(*Session).ResolveLayer(arg string) (int, error)
//	(*Session).Conditioning() features.Conditioning
//	(*Session).SetConditioning(ctx, features.Conditioning) error
//	(*Session).Cached(a, b *Image, t int) bool
//	(*Session).Stats() Stats
//	(*Session).Close() error
