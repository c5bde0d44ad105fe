// Package serve keeps models loaded between commands, as ollama does for language models: a
// server process holds warm sessions (unloaded after an idle keep-alive, bounded in memory
// over several models) and answers a small, versioned JSON API over a Unix socket and,
// optionally, HTTP on loopback. The CLI's score, sweep and rank use it through Client when it
// runs, and bench through Scorer (one /v1/show, then a /v1/score per pair); other languages
// use plain HTTP.
//
// API v1 (all bodies JSON; errors are {"error": "one line"} with a 4xx or 5xx status):
//
//	GET  /v1/health   {"status":"ok","api":1,"version":…,"pid":…,"models":N}
//	GET  /v1/models   the models loaded now
//	POST /v1/score    ScoreRequest  → ScoreResponse
//	POST /v1/sweep    SweepRequest  → SweepResponse
//	POST /v1/rank     RankRequest   → RankResponse
//	POST /v1/show     ShowRequest   → ShowResponse (the model loaded, the layer and t resolved)
//
// Image and model paths are read by the server, so they must be absolute (Client makes them
// so). Concurrent requests for the same model and timestep share one batched forward.
package serve

import (
	"time"

	"github.com/diffsim/diffsim/session"
)

// APIVersion is the version in the API's paths and in /v1/health.
const APIVersion = 1

// Spec names a loaded model: requests with equal specs share one warm session.
type Spec struct {
	Model        string   `json:"model,omitempty"` // builtin (default), a pulled name, a folder or an .onnx file (absolute)
	Size         int      `json:"size,omitempty"`  // 0 = the model's default
	Seed         *int64   `json:"seed,omitempty"`  // nil = session.DefaultSeed
	Device       string   `json:"device,omitempty"`
	Prompt       string   `json:"prompt,omitempty"`
	CFG          bool     `json:"cfg,omitempty"`
	IPAdapter    string   `json:"ip_adapter,omitempty"`
	ImageEncoder string   `json:"image_encoder,omitempty"`
	IPScale      *float64 `json:"ip_scale,omitempty"`
	// KeepAlive is how long the model stays loaded after this request: a Go duration ("5m",
	// "30s"), "0" to unload at once, a negative one ("-1") to keep it until the server stops.
	// Empty means the server's --keep-alive.
	KeepAlive string `json:"keep_alive,omitempty"`
}

// Select is where in the model a score is taken.
type Select struct {
	Layer  string `json:"layer,omitempty"`  // index, name or short name; empty = the model's default
	T      *int   `json:"t,omitempty"`      // DDPM timestep; nil = the model's default
	Step   int    `json:"step,omitempty"`   // the reference code's step index instead of t
	Metric string `json:"metric,omitempty"` // aas (default), cos, mse
}

// ScoreRequest asks for one score.
type ScoreRequest struct {
	Spec
	Select
	ImageA string `json:"image_a"`
	ImageB string `json:"image_b"`
}

// ScoreResponse is `diffsim score --json`'s record (the same keys and values) plus what a
// client needs to print the text form. Paths in it are the server's (absolute).
type ScoreResponse struct {
	session.Record
	LayerLabel string  `json:"layer_label"`
	Notice     string  `json:"notice,omitempty"` // why the device is not the one asked for
	Cached     bool    `json:"cached"`           // no network run was needed
	ElapsedMS  float64 `json:"elapsed_ms"`
}

// SweepRequest asks for every layer (or one) at each timestep.
type SweepRequest struct {
	Spec
	Layer     string `json:"layer,omitempty"` // one layer only; empty = all
	Timesteps []int  `json:"timesteps"`       // DDPM timesteps; empty = the model's default t
	Metric    string `json:"metric,omitempty"`
	ImageA    string `json:"image_a"`
	ImageB    string `json:"image_b"`
}

// SweepResponse is `diffsim sweep --json`'s object.
type SweepResponse = session.Sweep

// RankRequest ranks Images against Query.
type RankRequest struct {
	Spec
	Select
	Query  string   `json:"query"`
	Images []string `json:"images"`
	Top    int      `json:"top,omitempty"` // 0 = all
}

// RankResponse answers a RankRequest: the setup and point once, then one record per image,
// most similar first (ties by path), and the images that could not be scored.
type RankResponse struct {
	Query string `json:"query"`
	session.Setup
	session.Point
	LayerLabel string `json:"layer_label"`
	// Meaningless says why every score of this layer is 1 (cross-attention on text); null
	// when the layer's keys and values depend on the image.
	Meaningless *string           `json:"meaningless"`
	Images      int               `json:"images"` // images scored
	Results     []session.Ranked  `json:"results"`
	Skipped     []session.Skipped `json:"skipped"`
}

// ShowRequest asks what a score with this model and selection would be taken with, loading
// the model if needed (so a client can describe a run before its first pair).
type ShowRequest struct {
	Spec
	Select
}

// ShowResponse is the setup and the resolved point (layer index and name, t and step) that
// scores with the request's model and selection carry.
type ShowResponse struct {
	session.Setup
	session.Point
	LayerLabel string `json:"layer_label"`
	// Meaningless says why every score of this layer is 1 (cross-attention on text); null
	// when the layer's keys and values depend on the image.
	Meaningless *string `json:"meaningless"`
	Notice      string  `json:"notice,omitempty"` // why the device is not the one asked for
}

// Health answers /v1/health.
type Health struct {
	Status  string `json:"status"`
	API     int    `json:"api"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	Models  int    `json:"models"`
}

// LoadedModel describes one warm model in /v1/models.
type LoadedModel struct {
	Spec
	Name      string     `json:"name"`
	Family    string     `json:"family"`
	Device    string     `json:"device"`
	Bytes     int64      `json:"bytes"` // memory it took to load (resident set growth)
	InUse     int        `json:"in_use"`
	LoadedAt  time.Time  `json:"loaded_at"`
	LastUsed  time.Time  `json:"last_used"`
	ExpiresAt *time.Time `json:"expires_at"` // null while in use or kept forever
}

// ModelsResponse answers /v1/models.
type ModelsResponse struct {
	Models   []LoadedModel `json:"models"`
	Bytes    int64         `json:"bytes"`     // sum over the models
	MaxBytes int64         `json:"max_bytes"` // the server's memory bound
}
