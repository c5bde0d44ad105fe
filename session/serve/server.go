// Package serve keeps models loaded between commands, as ollama does for language models: a
// server process holds warm sessions (unloaded after an idle keep-alive, bounded in memory
// over several models) and answers the JSON API of package api over a Unix socket and,
// optionally, HTTP on loopback. Its handlers are thin adapters: each decodes a request of
// package api, resolves it with api.ModelInfo.Resolve, and calls the warm model's api.Scorer
// methods. Remote is the other side: the api.Scorer that commands and the explorer use when a
// server runs.
//
// Concurrent requests for the same model and timestep share one batched forward. A request
// whose client goes away is cancelled: its part of a shared forward is withdrawn, and the
// forward stops when no request waits for it.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/session"
)

// Defaults.
const (
	DefaultKeepAlive = 5 * time.Minute
	DefaultMaxBatch  = 8 // images per batched forward: a 512 px SD batch of 8 needs several GB
)

// Config configures a Server.
type Config struct {
	// Base holds what every model is opened with (runtime library, threads, feature cache,
	// graph cache); each request's Spec fills in the model and its settings.
	Base session.Options
	// Open loads a model; nil means session.Open. Tests swap in fakes.
	Open func(context.Context, session.Options) (api.Scorer, error)
	// KeepAlive is how long an idle model stays loaded when a request does not say (0 means
	// DefaultKeepAlive; a negative value keeps models until the server stops).
	KeepAlive time.Duration
	// MaxBytes bounds the memory the process holds beside its fixed overhead: the models as
	// loaded and run, their feature caches, and the images of the requests in flight (see
	// memory.go). Idle models are unloaded, least recently used first, to make room; requests
	// that do not fit wait. 0 means no bound.
	MaxBytes int64
	MaxBatch int // images per batched forward; 0 = DefaultMaxBatch
	// MaxActive requests compute at once, and MaxQueue more may wait for room (memory, or a
	// turn); beyond, a request is answered 503 with Retry-After. 0 means DefaultMaxActive and
	// DefaultMaxQueue.
	MaxActive, MaxQueue int
	Version             string // diffsim's build, for /v1/health
	// AllowOrigins are the web origins (as browsers send them: "http://localhost:3000") whose
	// pages may call the API; requests from any other origin are refused.
	AllowOrigins []string
	// Token is the bearer token requests from other machines must carry (see guard); empty
	// refuses them all.
	Token    string
	Timeouts Timeouts
}

// Server answers the API from warm models.
type Server struct {
	cfg  Config
	ms   *models
	imgs *imageCache
}

// New makes a server; it loads nothing until the first request.
func New(cfg Config) *Server {
	if cfg.Open == nil {
		cfg.Open = func(ctx context.Context, o session.Options) (api.Scorer, error) { return session.Open(ctx, o) }
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	return &Server{cfg: cfg, imgs: &imageCache{}, ms: &models{
		open: cfg.Open, base: cfg.Base, keepAlive: cfg.KeepAlive, maxBytes: cfg.MaxBytes, maxBatch: cfg.MaxBatch,
		maxActive: cfg.MaxActive, maxQueue: cfg.MaxQueue,
		rss: residentBytes, byKey: map[modelKey]*loaded{}, loading: map[modelKey]*loadCall{}, sizes: map[modelKey]int64{},
	}}
}

// Close unloads every model.
func (s *Server) Close() error { return s.ms.close() }

// Handler is the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/health", method(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.Health{Status: "ok", API: api.Version, Version: s.cfg.Version, PID: os.Getpid(), Models: s.ms.count()})
	}))
	mux.HandleFunc("/v1/models", method(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.ms.list())
	}))
	mux.HandleFunc("/v1/score", method(http.MethodPost, s.handleScore))
	mux.HandleFunc("/v1/sweep", method(http.MethodPost, handle(s.Sweep)))
	mux.HandleFunc("/v1/rank", method(http.MethodPost, handle(s.Rank)))
	mux.HandleFunc("/v1/show", method(http.MethodPost, handle(s.Show)))
	mux.HandleFunc("/v1/info", method(http.MethodPost, handle(s.Info)))
	mux.HandleFunc("/v1/result", method(http.MethodPost, handle(s.Result)))
	mux.HandleFunc("/v1/layers", method(http.MethodPost, handle(s.Layers)))
	mux.HandleFunc("/v1/prefetch", method(http.MethodPost, handle(s.Prefetch)))
	mux.HandleFunc("/v1/cached", method(http.MethodPost, handle(s.Cached)))
	mux.HandleFunc("/v1/stats", method(http.MethodPost, handle(s.Stats)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint %s %s; the API (v%d) has GET /v1/health, GET /v1/models, POST /v1/score, /v1/sweep, /v1/rank, /v1/show, /v1/info, /v1/result, /v1/layers, /v1/prefetch, /v1/cached, /v1/stats", r.Method, r.URL.Path, api.Version))
	})
	return &guard{next: mux, origins: s.cfg.AllowOrigins, token: s.cfg.Token, timeouts: s.cfg.Timeouts}
}

func method(want string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != want {
			w.Header().Set("Allow", want)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: use %s", r.Method, r.URL.Path, want))
			return
		}
		h(w, r)
	}
}

// handle decodes a request body strictly (unknown fields are a 400, so a misspelt option is
// not silently ignored), runs f with the request's context (cancelled when the client goes
// away) and encodes its answer.
func handle[Req, Resp any](f func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := decode[Req](w, r)
		if !ok {
			return
		}
		resp, err := f(r.Context(), req)
		if err != nil {
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// decode reads a request, its spec over api.DefaultSpec() (ModelRef.Prefill), strictly
// (decodeRequest); false when it has answered the request with the error.
func decode[Req any](w http.ResponseWriter, r *http.Request) (Req, bool) {
	req, err := decodeRequest[Req](w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return req, false
	}
	return req, true
}

// writeFailure answers err with its status; a refusal for want of room (memory, or the queue)
// asks the client to retry soon, as room comes back when requests finish.
func writeFailure(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrBusy) || errors.Is(err, ErrMemory) {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, status(err), err)
}

// handleScore answers /v1/score: the body is exactly `score --json`'s record; whether the
// features were cached and how long it took are headers beside it.
func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) {
	req, ok := decode[api.ScoreRequest](w, r)
	if !ok {
		return
	}
	sc, err := s.Score(r.Context(), req)
	if err != nil {
		writeFailure(w, err)
		return
	}
	w.Header().Set(api.HeaderCached, strconv.FormatBool(sc.Cached))
	w.Header().Set(api.HeaderTiming, fmt.Sprintf("score;dur=%.3f", sc.Elapsed))
	writeJSON(w, http.StatusOK, sc.Record)
}

// statusError carries an HTTP status chosen where the error is made.
type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

func badRequest(err error) error { return statusError{http.StatusBadRequest, err} }

func badf(format string, args ...any) error { return badRequest(fmt.Errorf(format, args...)) }

// statusClientClosed is nginx's "client closed request": nobody reads it, but logs do.
const statusClientClosed = 499

func status(err error) int {
	var se statusError
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.Is(err, ErrMemory), errors.Is(err, ErrBusy), errors.Is(err, ErrModelTooLarge):
		return http.StatusServiceUnavailable
	case errors.Is(err, api.ErrUsage), errors.Is(err, imagefile.ErrBadImage),
		errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError sends {"error": "..."}: one line, as the CLI promises on stderr.
func writeError(w http.ResponseWriter, code int, err error) {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

// needPath checks that a path the server will read was given, and absolutely: the server's
// working folder is not the client's.
func needPath(field, p string) error {
	switch {
	case p == "":
		return badf("%s is required", field)
	case !filepath.IsAbs(p):
		return badf("%s %q is relative; the server reads files itself, so give an absolute path", field, p)
	}
	return nil
}

// modelPath checks a model given as a path (names such as sd15 pass).
func modelPath(spec api.Spec) error {
	m := spec.Model
	if strings.ContainsRune(m, os.PathSeparator) && !filepath.IsAbs(m) {
		return badf("model %q is a relative path; give an absolute one", m)
	}
	for field, p := range map[string]string{"ip_adapter": spec.IPAdapter, "image_encoder": spec.ImageEncoder} {
		if p != "" && !filepath.IsAbs(p) {
			return badf("%s %q is relative; give an absolute path", field, p)
		}
	}
	return nil
}

// Score answers POST /v1/score: the record `score --json` prints for the same request, and
// whether the pair's features were already kept.
func (s *Server) Score(ctx context.Context, req api.ScoreRequest) (api.Scored, error) {
	start := time.Now()
	if err := errors.Join(needPath("image_a", req.ImageA), needPath("image_b", req.ImageB), modelPath(req.Spec)); err != nil {
		return api.Scored{}, err
	}
	// Images are checked before a model loads: a typo, or a FIFO, should not wait for one.
	need, err := s.checkImages(ctx, req.ImageA, req.ImageB)
	if err != nil {
		return api.Scored{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.Scored{}, err
	}
	defer release()
	tg, err := l.m.Resolve(req.Selection)
	if err != nil {
		return api.Scored{}, err
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		return api.Scored{}, err
	}
	defer done()
	a, b, err := s.loadPair(ctx, req.ImageA, req.ImageB)
	if err != nil {
		return api.Scored{}, err
	}
	r, cached, err := l.score(ctx, api.Request{A: a, B: b, Layer: tg.Layer, T: tg.T, Metric: tg.Metric, Token: -1})
	if err != nil {
		return api.Scored{}, err
	}
	return api.Scored{Record: api.RecordOf(l.m, r), Cached: cached, Elapsed: float64(time.Since(start).Microseconds()) / 1000}, nil
}

// score scores req with the pair's features computed through the batcher (shared with other
// clients' requests at t); cached says whether they were all kept before this request.
func (l *loaded) score(ctx context.Context, req api.Request) (api.Result, bool, error) {
	cached := l.m.Cached(req.A, req.B, req.T)
	if err := l.batch.prefetch(ctx, req.T, req.A, req.B); err != nil {
		return api.Result{}, false, err
	}
	r, err := l.m.Score(ctx, req)
	r.Cached = cached
	return r, cached, err
}

// Sweep answers POST /v1/sweep: one forward per timestep serves every layer.
func (s *Server) Sweep(ctx context.Context, req api.SweepRequest) (api.Sweep, error) {
	if err := errors.Join(needPath("image_a", req.ImageA), needPath("image_b", req.ImageB), modelPath(req.Spec)); err != nil {
		return api.Sweep{}, err
	}
	if req.Layer != "" && len(req.Layers) > 0 {
		return api.Sweep{}, badf("give layer or layers, not both")
	}
	for _, t := range req.Timesteps {
		if t < 0 || t >= schedule.Timesteps {
			return api.Sweep{}, badf("timestep %d is outside 0..%d", t, schedule.Timesteps-1)
		}
	}
	metric, err := api.ParseMetric(string(req.Metric))
	if err != nil {
		return api.Sweep{}, err
	}
	need, err := s.checkImages(ctx, req.ImageA, req.ImageB)
	if err != nil {
		return api.Sweep{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.Sweep{}, err
	}
	defer release()
	layers := slices.Clone(req.Layers) // nil: all
	for _, li := range layers {
		if err := l.info.CheckLayer(li); err != nil {
			return api.Sweep{}, err
		}
	}
	if req.Layer != "" {
		li, err := l.info.ResolveLayer(req.Layer)
		if err != nil {
			return api.Sweep{}, err
		}
		layers = []int{li}
	}
	ts := slices.Clone(req.Timesteps)
	if len(ts) == 0 {
		ts = []int{l.info.DefaultT}
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		return api.Sweep{}, err
	}
	defer done()
	a, b, err := s.loadPair(ctx, req.ImageA, req.ImageB)
	if err != nil {
		return api.Sweep{}, err
	}
	return l.m.Sweep(ctx, a, b, layers, ts, metric, nil)
}

// Show answers POST /v1/show.
func (s *Server) Show(ctx context.Context, req api.ShowRequest) (api.ShowResponse, error) {
	if err := modelPath(req.Spec); err != nil {
		return api.ShowResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.ShowResponse{}, err
	}
	defer release()
	tg, err := l.m.Resolve(req.Selection)
	if err != nil {
		return api.ShowResponse{}, err
	}
	return api.ShowResponse{
		Setup: api.SetupOf(l.m, tg.Metric), Point: api.NewPoint(l.info, tg.Layer, tg.T),
		Meaningless: meaningless(l.info.Layers[tg.Layer]),
	}, nil
}

// meaningless is the layer's reason as a record carries it: null when its scores mean something.
func meaningless(l api.Layer) *string {
	if why := l.Meaningless(); why != "" {
		return &why
	}
	return nil
}

// Rank answers POST /v1/rank: the query's features are computed once, the images run two at
// a time (as `diffsim rank` does, so a 512 px U-Net batch stays small), and files that cannot
// be read are listed as skipped.
func (s *Server) Rank(ctx context.Context, req api.RankRequest) (api.RankResponse, error) {
	if err := errors.Join(needPath("query", req.Query), modelPath(req.Spec)); err != nil {
		return api.RankResponse{}, err
	}
	if req.Top < 0 {
		return api.RankResponse{}, badf("top %d: want a positive count, or 0 for all", req.Top)
	}
	for _, p := range req.Images {
		if err := needPath("images[]", p); err != nil {
			return api.RankResponse{}, err
		}
	}
	need, err := s.rankBytes(ctx, req.Query, req.Images)
	if err != nil {
		return api.RankResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.RankResponse{}, err
	}
	defer release()
	tg, err := l.m.Resolve(req.Selection)
	if err != nil {
		return api.RankResponse{}, err
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		return api.RankResponse{}, err
	}
	defer done()
	query, err := s.loadImage(ctx, req.Query)
	if err != nil {
		return api.RankResponse{}, err
	}
	results, skipped, err := l.m.Rank(ctx, query, req.Images, tg.Layer, tg.T, tg.Metric, nil)
	if err != nil {
		return api.RankResponse{}, err
	}
	out := api.RankResponse{
		Query: req.Query, Setup: api.SetupOf(l.m, tg.Metric), Point: api.NewPoint(l.info, tg.Layer, tg.T),
		Meaningless: meaningless(l.info.Layers[tg.Layer]), Images: len(results), Results: results, Skipped: skipped,
	}
	if out.Results == nil {
		out.Results = []api.Ranked{}
	}
	if out.Skipped == nil {
		out.Skipped = []api.Skipped{}
	}
	api.SortSkipped(out.Skipped)
	if req.Top > 0 && len(out.Results) > req.Top {
		out.Results = out.Results[:req.Top]
	}
	return out, nil
}
