// Package serve keeps models loaded between commands, as ollama does for language models: a
// server process holds warm sessions (unloaded after an idle keep-alive, bounded in memory
// over several models) and answers a small, versioned JSON API over a Unix socket and,
// optionally, HTTP on loopback. The CLI's score, sweep and rank use it through Client when it
// runs; other languages use plain HTTP.
//
// API v1 (all bodies JSON; errors are {"error": "one line"} with a 4xx or 5xx status):
//
//	GET  /v1/health   {"status":"ok","api":1,"version":…,"pid":…,"models":N}
//	GET  /v1/models   the models loaded now
//	POST /v1/score    ScoreRequest  → ScoreResponse
//	POST /v1/sweep    SweepRequest  → SweepResponse
//	POST /v1/rank     RankRequest   → RankResponse
//
// Image and model paths are read by the server, so they must be absolute (Client makes them
// so). Concurrent requests for the same model and timestep share one batched forward.
package serve

import (
	"time"
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

// ScoreResponse carries the fields of `diffsim score --json` (same names and meaning) plus
// what a client needs to print the text form.
type ScoreResponse struct {
	Model               string   `json:"model"`
	ModelDescription    string   `json:"model_description,omitempty"`
	Layer               string   `json:"layer"`
	LayerShort          string   `json:"layer_short,omitempty"`
	LayerLabel          string   `json:"layer_label"`
	LayerIndex          int      `json:"layer_index"`
	T                   int      `json:"t"`
	Step                int      `json:"step"`
	Timesteps           bool     `json:"timesteps"` // whether t means anything for this model
	Metric              string   `json:"metric"`
	Score               *float64 `json:"score"` // null when not a number (a blank image)
	AtoB                *float64 `json:"a_to_b"`
	BtoA                *float64 `json:"b_to_a"`
	HigherIsMoreSimilar bool     `json:"higher_is_more_similar"`
	Meaningless         string   `json:"meaningless,omitempty"`
	FeatureCosine       *float64 `json:"feature_cosine,omitempty"`
	GlobalCosine        *float64 `json:"global_cosine,omitempty"`
	Size                int      `json:"size"`
	Seed                int64    `json:"seed"`
	Prompt              string   `json:"prompt,omitempty"`
	CFG                 bool     `json:"cfg,omitempty"`
	Device              string   `json:"device"`
	Notice              string   `json:"notice,omitempty"` // why the device is not the one asked for
	ImageA              string   `json:"image_a"`
	ImageB              string   `json:"image_b"`
	Cached              bool     `json:"cached"` // no network run was needed
	ElapsedMS           float64  `json:"elapsed_ms"`
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

// SweepLayer is one layer of a sweep.
type SweepLayer struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Short string `json:"short,omitempty"`
	Label string `json:"label"`
	Kind  string `json:"kind"`
}

// SweepScore is one layer at one timestep; Score is null when not a number.
type SweepScore struct {
	LayerIndex  int      `json:"layer_index"`
	T           int      `json:"t"`
	Score       *float64 `json:"score"`
	Meaningless bool     `json:"meaningless,omitempty"`
}

// SweepResponse answers a SweepRequest: Scores run layer-major, in the order of Layers and
// Timesteps.
type SweepResponse struct {
	Model               string       `json:"model"`
	ModelDescription    string       `json:"model_description,omitempty"`
	Metric              string       `json:"metric"`
	HigherIsMoreSimilar bool         `json:"higher_is_more_similar"`
	Timesteps           []int        `json:"timesteps"`
	HasTimesteps        bool         `json:"has_timesteps"`
	Layers              []SweepLayer `json:"layers"`
	Scores              []SweepScore `json:"scores"`
	Size                int          `json:"size"`
	Seed                int64        `json:"seed"`
	Device              string       `json:"device"`
	ImageA              string       `json:"image_a"`
	ImageB              string       `json:"image_b"`
}

// RankRequest ranks Images against Query.
type RankRequest struct {
	Spec
	Select
	Query  string   `json:"query"`
	Images []string `json:"images"`
	Top    int      `json:"top,omitempty"` // 0 = all
}

// RankEntry is one ranked image.
type RankEntry struct {
	Rank  int     `json:"rank"`
	Path  string  `json:"path"`
	Score float64 `json:"score"`
}

// Skipped is an image that could not be scored, and why.
type Skipped struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// RankResponse answers a RankRequest, most similar first (ties by path).
type RankResponse struct {
	Query               string      `json:"query"`
	Model               string      `json:"model"`
	Layer               string      `json:"layer"`
	LayerShort          string      `json:"layer_short,omitempty"`
	LayerLabel          string      `json:"layer_label"`
	LayerIndex          int         `json:"layer_index"`
	T                   int         `json:"t"`
	Step                int         `json:"step"`
	Metric              string      `json:"metric"`
	HigherIsMoreSimilar bool        `json:"higher_is_more_similar"`
	Meaningless         string      `json:"meaningless,omitempty"`
	Size                int         `json:"size"`
	Seed                int64       `json:"seed"`
	Device              string      `json:"device"`
	Images              int         `json:"images"`
	Results             []RankEntry `json:"results"`
	Skipped             []Skipped   `json:"skipped"`
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
