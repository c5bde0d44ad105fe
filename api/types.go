package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"time"
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

// ParseMetric reads a metric name; "" is AAS.
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(s); m {
	case "":
		return AAS, nil
	case AAS, Cosine, MSE:
		return m, nil
	}
	return "", usagef("metric %q: want aas, cos or mse", s)
}

// ErrUsage marks errors caused by what the user asked for or gave: the CLI's exit code 2, the
// server's 400. errors.Is finds it, and it adds nothing to the message.
var ErrUsage = errors.New("bad usage")

type usageErr struct{ err error }

func (e usageErr) Error() string   { return e.err.Error() }
func (e usageErr) Unwrap() []error { return []error{e.err, ErrUsage} }

// UsageError marks err as the caller's fault (ErrUsage), keeping its message.
func UsageError(err error) error {
	if err == nil {
		return nil
	}
	return usageErr{err}
}

func usagef(format string, args ...any) error { return usageErr{fmt.Errorf(format, args...)} }

// Conditioning is what a model's features depend on besides the image, the timestep and the
// seed: the text prompt and the classifier-free-guidance layout of a diffusion U-Net. It is
// comparable, because it is part of every feature-cache key; a model that takes no
// conditioning refuses anything but the zero value.
type Conditioning struct {
	Prompt string // "" is the unconditional (empty-prompt) embedding
	// CFG runs the unconditional and the prompted halves as one batch; both enter the score
	// (the diffusion family's doc says how).
	CFG bool
}

// IsZero reports the unconditional setting every model accepts.
func (c Conditioning) IsZero() bool { return c == Conditioning{} }

func (c Conditioning) String() string {
	switch {
	case c.CFG:
		return fmt.Sprintf("CFG: unconditional + prompt %q", c.Prompt)
	case c.Prompt != "":
		return fmt.Sprintf("prompt %q", c.Prompt)
	}
	return "unconditional"
}

// Map is a per-token value grid: H×W spatial tokens, row-major. Values may be NaN. In JSON it
// is {"w","h","values"}, the values being the W×H float32 values little-endian and
// base64-encoded (exact, and NaN-safe); a map never set is null.
type Map struct {
	W, H   int
	Values []float32
}

// IsZero reports a map never set (no token asked for).
func (m Map) IsZero() bool { return m.Values == nil && m.W == 0 && m.H == 0 }

type mapJSON struct {
	W      int    `json:"w"`
	H      int    `json:"h"`
	Values []byte `json:"values"`
}

// MarshalJSON writes m as {"w","h","values"}, or null when it was never set.
func (m Map) MarshalJSON() ([]byte, error) {
	if m.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 4*len(m.Values))
	for _, v := range m.Values {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return json.Marshal(mapJSON{W: m.W, H: m.H, Values: b})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Map) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Map{}
		return nil
	}
	var j mapJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.Values)%4 != 0 {
		return fmt.Errorf("map of %d bytes: want 4 per float32", len(j.Values))
	}
	if j.W < 0 || j.H < 0 || j.W*j.H != len(j.Values)/4 {
		return fmt.Errorf("map of %d values is not %d×%d", len(j.Values)/4, j.W, j.H)
	}
	v := make([]float32, len(j.Values)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(j.Values[4*i:]))
	}
	*m = Map{W: j.W, H: j.H, Values: v}
	return nil
}

// Image is a decoded input image, identified by its content hash.
type Image struct {
	Path   string // as the caller named it; records carry it as it is
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

	MapA, MapB Map // per-token cosine maps (A's self vs cross-attended; B's likewise)
	AttnRow    Map // attention of Req.Token of A over B's tokens, head-averaged

	Cached bool // features came from the cache: no network run
	// Pruned: the features came from the network cut down to this layer, so the pair's other
	// layers at this t are not computed (a local session's PruneFirst or Prune; a served
	// result does not say).
	Pruned  bool
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

// Stats counts the work a model has done, for the status line and for tests.
type Stats struct {
	Forwards    int   `json:"forwards"`  // batched network runs
	Extracted   int   `json:"extracted"` // images run through the network (a batch of two counts two)
	CacheHits   int   `json:"cache_hits"`
	CacheBytes  int64 `json:"cache_bytes"` // memory held by cached features and the self-attention outputs kept with them
	CacheBudget int64 `json:"cache_budget"`
}
