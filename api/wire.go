package api

import "time"

// Version is the version in the API's paths and in /v1/health.
const Version = 1

// The HTTP API of `diffsim serve` (v1). All bodies are JSON; errors are {"error": "one line"}
// with a 4xx or 5xx status.
//
//	GET  /v1/health   Health
//	GET  /v1/models   ModelsResponse: the models loaded now
//	POST /v1/score    ScoreRequest    → Record: exactly `score --json`'s record
//	POST /v1/sweep    SweepRequest    → Sweep: exactly `sweep --json`'s object
//	POST /v1/rank     RankRequest     → RankResponse
//	POST /v1/show     ShowRequest     → ShowResponse (the setup and point a score would carry)
//	POST /v1/info     InfoRequest     → ModelInfo (layers, defaults, device, capabilities)
//	POST /v1/result   ResultRequest   → ResultResponse (one score with its maps)
//	POST /v1/layers   LayersRequest   → LayersResponse (every layer's score at one t)
//	POST /v1/prefetch PrefetchRequest → {} (images' features at t computed and kept)
//	POST /v1/cached   CachedRequest   → CachedResponse
//	POST /v1/stats    StatsRequest    → Stats (the model's counters, all clients together)
//
// /v1/score says beside the record, in headers, what is not part of it: Diffsim-Cached (true
// when no network ran for this request) and Server-Timing (score;dur=milliseconds).
//
// Numbers are Floats (NaN null, ±Inf "+Inf"/"-Inf"); maps are Maps. Image and model paths are
// read by the server, so they must be absolute (Client makes them so). Each request names its
// model with a Spec, read over DefaultSpec() (a field left out is its default); requests with
// equal specs share one warm model.

// HeaderCached and HeaderTiming are the names of /v1/score's extras.
const (
	HeaderCached = "Diffsim-Cached"
	HeaderTiming = "Server-Timing"
)

// ModelRef is the model a request is for, and how long the server keeps it afterwards.
type ModelRef struct {
	Spec
	// KeepAlive is how long the model stays loaded after this request: a Go duration ("5m",
	// "30s") or seconds, "0" to unload at once, a negative one ("-1") to keep it until the
	// server stops. Empty means the server's --keep-alive.
	KeepAlive string `json:"keep_alive,omitempty"`
}

// Prefill sets the spec to DefaultSpec() before a request is read into it, so that what the
// request leaves out is its default and an explicit 0 (seed 0, ip_scale 0) stays 0. Every
// request embeds a ModelRef, so every request has it.
func (m *ModelRef) Prefill() { m.Spec = DefaultSpec() }

// ScoreRequest asks for one score.
type ScoreRequest struct {
	ModelRef
	Selection
	ImageA string `json:"image_a"`
	ImageB string `json:"image_b"`
}

// SweepRequest asks for layers × timesteps of a pair.
type SweepRequest struct {
	ModelRef
	Layer     string `json:"layer,omitempty"`  // one layer by index, name or short name; empty = all
	Layers    []int  `json:"layers,omitempty"` // layers by index instead
	Timesteps []int  `json:"timesteps"`        // DDPM timesteps; empty = the model's default t
	Metric    Metric `json:"metric,omitempty"`
	ImageA    string `json:"image_a"`
	ImageB    string `json:"image_b"`
}

// RankRequest ranks Images against Query.
type RankRequest struct {
	ModelRef
	Selection
	Query  string   `json:"query"`
	Images []string `json:"images"`
	Top    int      `json:"top,omitempty"` // 0 = all
}

// RankResponse answers a RankRequest: the setup and point once, then one record per image,
// most similar first (ties by path), and the images that could not be scored.
type RankResponse struct {
	Query string `json:"query"`
	Setup
	Point
	// Meaningless says why every score of this layer is 1 (cross-attention on text); null
	// when the layer's keys and values depend on the image.
	Meaningless *string   `json:"meaningless"`
	Images      int       `json:"images"` // images scored
	Results     []Ranked  `json:"results"`
	Skipped     []Skipped `json:"skipped"`
}

// ShowRequest asks what a score with this model and selection would be taken with, loading
// the model if needed.
type ShowRequest struct {
	ModelRef
	Selection
}

// ShowResponse is the setup and the resolved point (layer index and name, t and step) that
// scores with the request's model and selection carry.
type ShowResponse struct {
	Setup
	Point
	// Meaningless says why every score of this layer is 1; null when it is not.
	Meaningless *string `json:"meaningless"`
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
	KeepAlive string `json:"keep_alive"`
	Name      string `json:"name"`
	Family    string `json:"family"`
	Device    string `json:"device"`
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
	ModelRef
}

// ResultRequest asks for one score with its maps, as the explorer shows it: the layer by
// index and t as given (what the client resolved from /v1/info).
type ResultRequest struct {
	ModelRef
	A      ImageRef `json:"a"`
	B      ImageRef `json:"b"`
	Layer  int      `json:"layer"` // index into ModelInfo.Layers
	T      int      `json:"t"`
	Metric Metric   `json:"metric,omitempty"` // aas (default), cos, mse
	// Token is the token of A (spatial index) whose attention over B comes back as attn_row;
	// null for none.
	Token *int `json:"token"`
}

// ResultResponse is a Result on the wire.
type ResultResponse struct {
	Score          Float  `json:"score"`
	AtoB           Float  `json:"a_to_b"`
	BtoA           Float  `json:"b_to_a"`
	Metric         Metric `json:"metric"`
	HigherIsBetter bool   `json:"higher_is_more_similar"`
	// Meaningless says why the score carries no image information; "" when it does.
	Meaningless   string  `json:"meaningless,omitempty"`
	FeatureCosine Float   `json:"feature_cosine"`
	MSE           Float   `json:"mse"`
	Global        Float   `json:"global_cosine"` // null when the model has no global embedding
	MapA          Map     `json:"map_a"`
	MapB          Map     `json:"map_b"`
	AttnRow       Map     `json:"attn_row"` // null when no token was asked for
	Cached        bool    `json:"cached"`   // no network run was needed
	ElapsedMS     float64 `json:"elapsed_ms"`
}

// NewResultResponse is r on the wire.
func NewResultResponse(r Result) ResultResponse {
	return ResultResponse{
		Score: Float(r.Score), AtoB: Float(r.AtoB), BtoA: Float(r.BtoA), Metric: r.Metric, HigherIsBetter: r.HigherIsBetter,
		Meaningless: r.Meaningless, FeatureCosine: Float(r.FeatureCosine), MSE: Float(r.MSE), Global: Float(r.Global),
		MapA: r.MapA, MapB: r.MapB, AttnRow: r.AttnRow, Cached: r.Cached,
		ElapsedMS: float64(r.Elapsed.Microseconds()) / 1000,
	}
}

// Result is the answer as a Result answering req (Elapsed is left to the caller).
func (r ResultResponse) Result(req Request) Result {
	return Result{
		Req: req, Score: float64(r.Score), AtoB: float64(r.AtoB), BtoA: float64(r.BtoA), Metric: r.Metric,
		HigherIsBetter: r.HigherIsBetter, Meaningless: r.Meaningless, FeatureCosine: float64(r.FeatureCosine),
		MSE: float64(r.MSE), Global: float64(r.Global), MapA: r.MapA, MapB: r.MapB, AttnRow: r.AttnRow, Cached: r.Cached,
	}
}

// LayersRequest asks for every layer's score at one t.
type LayersRequest struct {
	ModelRef
	A      ImageRef `json:"a"`
	B      ImageRef `json:"b"`
	T      int      `json:"t"`
	Metric Metric   `json:"metric,omitempty"`
}

// LayersResponse holds one score per layer, in the model's layer order.
type LayersResponse struct {
	Scores []WireLayerScore `json:"scores"`
}

// WireLayerScore is a LayerScore on the wire.
type WireLayerScore struct {
	Layer       int   `json:"layer"`
	T           int   `json:"t"`
	Score       Float `json:"score"`
	Meaningless bool  `json:"meaningless"`
}

// PrefetchRequest asks the server to compute images' features at t (in one batch) and keep
// them.
type PrefetchRequest struct {
	ModelRef
	Images []ImageRef `json:"images"`
	T      int        `json:"t"`
}

// PrefetchResponse answers a PrefetchRequest: an empty object.
type PrefetchResponse struct{}

// CachedRequest asks whether the features at t of the images with these hashes are kept;
// nothing is read or computed.
type CachedRequest struct {
	ModelRef
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
	ModelRef
}
