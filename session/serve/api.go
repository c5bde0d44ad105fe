// Package serve keeps models loaded between commands, as ollama does for language models: a
// server process holds warm sessions (unloaded after an idle keep-alive, bounded in memory
// over several models) and answers a small, versioned JSON API over a Unix socket and,
// optionally, HTTP on loopback. The CLI's score, sweep and rank use it through Client when it
// runs, bench through Scorer (one /v1/show, then a /v1/score per pair), and the explorer
// through Backend (the /v1/info … /v1/stats calls below); other languages use plain HTTP.
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
// The explorer's calls take the layer by index and t as given (what the explorer resolved
// from /v1/info), and images with the content hash the client computed, which the server
// checks so both sides key features alike:
//
//	POST /v1/info     InfoRequest     → InfoResponse (the model: layers, default layer and t, device)
//	POST /v1/result   ResultRequest   → ResultResponse (one score with its maps: session.Result)
//	POST /v1/layers   LayersRequest   → LayersResponse (every layer's score at one t)
//	POST /v1/prefetch PrefetchRequest → {} (a pair's features at t computed and kept)
//	POST /v1/cached   CachedRequest   → CachedResponse (whether a pair's features at t are kept)
//	POST /v1/stats    StatsRequest    → StatsResponse (the model's counters, all clients together)
//
// JSON has no NaN or infinity: in these answers a number that is NaN (global_cosine of a
// model without a global embedding) is null, and an infinite one is the string "+Inf" or
// "-Inf". Maps (map_a, map_b, attn_row) are {"w","h","values"}, values being the W×H float32
// values row by row, little-endian, base64-encoded: exact, and NaN-safe.
//
// Image and model paths are read by the server, so they must be absolute (Client makes them
// so). Concurrent requests for the same model and timestep share one batched forward. A
// request whose client goes away is cancelled: its part of a shared forward is withdrawn,
// and the forward stops when no request waits for it.
package serve

import (
	"time"

	"github.com/diffsim/diffsim/features"
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
	Name   string `json:"name"`
	Family string `json:"family"`
	Device string `json:"device"`
	// Bytes is the memory the model holds: its footprint (the resident set's growth across its
	// load and its first forward) and its feature cache.
	Bytes      int64 `json:"bytes"`
	CacheBytes int64 `json:"cache_bytes"` // of which its feature cache
	// Measured is false until the model's first forward: Bytes is then what its load took,
	// or the prediction from its files, whichever is larger.
	Measured  bool       `json:"measured"`
	InUse     int        `json:"in_use"`
	LoadedAt  time.Time  `json:"loaded_at"`
	LastUsed  time.Time  `json:"last_used"`
	ExpiresAt *time.Time `json:"expires_at"` // null while in use or kept forever
}

// ModelsResponse answers /v1/models.
type ModelsResponse struct {
	Models    []LoadedModel `json:"models"`
	Bytes     int64         `json:"bytes"`      // sum over the models
	WorkBytes int64         `json:"work_bytes"` // the images of the requests computing, and the explorer's kept images
	MaxBytes  int64         `json:"max_bytes"`  // the server's memory bound over Bytes + WorkBytes; 0 for none
	// ResidentBytes is the process's resident set now: Bytes + WorkBytes and the fixed
	// overhead of the Go runtime and the ONNX Runtime library.
	ResidentBytes int64 `json:"resident_bytes"`
	Active        int   `json:"active"` // requests computing
	Queued        int   `json:"queued"` // requests waiting for room
}

// ImageRef is an image the server reads, with the hex sha256 of its bytes as the client
// read them: the server refuses a file whose bytes changed since (its features would be keyed
// by another hash than the client's). An empty hash is not checked.
type ImageRef struct {
	Path string `json:"path"`
	Hash string `json:"hash,omitempty"`
}

// InfoRequest asks for the model a spec loads (loading it if needed).
type InfoRequest struct {
	Spec
}

// InfoResponse is session.ModelInfo: the model, its layers and defaults, and the device and
// seed it runs with.
type InfoResponse struct {
	Name         string           `json:"name"`
	Family       string           `json:"family"`
	Description  string           `json:"description"`
	Device       string           `json:"device"`
	Notice       string           `json:"notice,omitempty"` // why the device is not the one asked for
	Layers       []features.Layer `json:"layers"`
	DefaultLayer int              `json:"default_layer"`
	Timesteps    bool             `json:"timesteps"` // whether t means anything for this model
	DefaultT     int              `json:"default_t"`
	Size         int              `json:"size"`
	Seed         int64            `json:"seed"`
}

// ResultRequest asks for one score with its maps, as the explorer shows it.
type ResultRequest struct {
	Spec
	A      ImageRef `json:"a"`
	B      ImageRef `json:"b"`
	Layer  int      `json:"layer"` // index into InfoResponse.Layers
	T      int      `json:"t"`
	Metric string   `json:"metric,omitempty"` // aas (default), cos, mse
	// Token is the token of A (spatial index) whose attention over B comes back as attn_row;
	// null for none.
	Token *int `json:"token"`
}

// ResultResponse is session.Result.
type ResultResponse struct {
	Score          Float  `json:"score"`
	AtoB           Float  `json:"a_to_b"`
	BtoA           Float  `json:"b_to_a"`
	Metric         string `json:"metric"`
	HigherIsBetter bool   `json:"higher_is_more_similar"`
	// Meaningless says why the score carries no image information; "" when it does.
	Meaningless   string  `json:"meaningless,omitempty"`
	FeatureCosine Float   `json:"feature_cosine"`
	MSE           Float   `json:"mse"`
	Global        Float   `json:"global_cosine"` // null when the model has no global embedding
	MapA          *Map    `json:"map_a"`
	MapB          *Map    `json:"map_b"`
	AttnRow       *Map    `json:"attn_row"` // null when no token was asked for
	Cached        bool    `json:"cached"`   // no network run was needed
	ElapsedMS     float64 `json:"elapsed_ms"`
}

// Map is a features.Map on the wire: Values holds W×H float32 row by row, little-endian
// (base64 in JSON).
type Map struct {
	W      int    `json:"w"`
	H      int    `json:"h"`
	Values []byte `json:"values"`
}

// LayersRequest asks for every layer's score at one t.
type LayersRequest struct {
	Spec
	A      ImageRef `json:"a"`
	B      ImageRef `json:"b"`
	T      int      `json:"t"`
	Metric string   `json:"metric,omitempty"`
}

// LayersResponse holds one score per layer, in the model's layer order.
type LayersResponse struct {
	Scores []LayerScore `json:"scores"`
}

// LayerScore is session.LayerScore.
type LayerScore struct {
	Layer       int   `json:"layer"`
	T           int   `json:"t"`
	Score       Float `json:"score"`
	Meaningless bool  `json:"meaningless"`
}

// PrefetchRequest asks the server to compute a pair's features at t and keep them.
type PrefetchRequest struct {
	Spec
	A ImageRef `json:"a"`
	B ImageRef `json:"b"`
	T int      `json:"t"`
}

// PrefetchResponse answers a PrefetchRequest: an empty object.
type PrefetchResponse struct{}

// CachedRequest asks whether the features at t of the images with these hashes are kept;
// nothing is read or computed.
type CachedRequest struct {
	Spec
	HashA string `json:"hash_a"`
	HashB string `json:"hash_b"`
	T     int    `json:"t"`
}

// CachedResponse answers a CachedRequest.
type CachedResponse struct {
	Cached bool `json:"cached"`
}

// StatsRequest asks for the counters of the model a spec names.
type StatsRequest struct {
	Spec
}

// StatsResponse is session.Stats: the work the model has done for every client.
type StatsResponse struct {
	Forwards    int   `json:"forwards"`  // batched network runs
	Extracted   int   `json:"extracted"` // images run through the network
	CacheHits   int   `json:"cache_hits"`
	CacheBytes  int64 `json:"cache_bytes"`
	CacheBudget int64 `json:"cache_budget"`
}
