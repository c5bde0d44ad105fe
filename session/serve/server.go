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
	"strings"
	"time"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/imagefile"
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
	Open func(context.Context, session.Options) (Model, error)
	// KeepAlive is how long an idle model stays loaded when a request does not say (0 means
	// DefaultKeepAlive; a negative value keeps models until the server stops).
	KeepAlive time.Duration
	// MaxBytes bounds the memory the loaded models take together; idle models are unloaded,
	// least recently used first, to make room. 0 means no bound.
	MaxBytes int64
	MaxBatch int // images per batched forward; 0 = DefaultMaxBatch
	// MaxActive requests compute at once, and MaxQueue more may wait for room (memory, or a
	// turn); beyond, a request is answered 503 with Retry-After. 0 means DefaultMaxActive and
	// DefaultMaxQueue.
	MaxActive, MaxQueue int
	Version             string // diffsim's version, for /v1/health
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
		cfg.Open = func(ctx context.Context, o session.Options) (Model, error) { return session.Open(ctx, o) }
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
		rss: residentBytes, byKey: map[key]*loaded{}, loading: map[key]*loadCall{}, sizes: map[key]int64{},
	}}
}

// Close unloads every model.
func (s *Server) Close() error { return s.ms.close() }

// Handler is the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/health", method(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Health{Status: "ok", API: APIVersion, Version: s.cfg.Version, PID: os.Getpid(), Models: s.ms.count()})
	}))
	mux.HandleFunc("/v1/models", method(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.ms.list())
	}))
	mux.HandleFunc("/v1/score", method(http.MethodPost, handle(s.Score)))
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
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint %s %s; the API (v%d) has GET /v1/health, GET /v1/models, POST /v1/score, /v1/sweep, /v1/rank, /v1/show, /v1/info, /v1/result, /v1/layers, /v1/prefetch, /v1/cached, /v1/stats", r.Method, r.URL.Path, APIVersion))
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
		req, err := decodeRequest[Req](w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		resp, err := f(r.Context(), req)
		if err != nil {
			if errors.Is(err, ErrBusy) || errors.Is(err, ErrMemory) {
				// Room comes back as requests finish: ask for a retry soon.
				w.Header().Set("Retry-After", "1")
			}
			writeError(w, status(err), err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
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
	case errors.Is(err, session.ErrUsage), errors.Is(err, imagefile.ErrBadImage),
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

// target is a request resolved against its model.
type target struct {
	l      *loaded
	layer  int
	t      int
	metric session.Metric
}

func resolve(l *loaded, sel Select) (target, error) {
	tg := target{l: l, metric: session.Metric(sel.Metric)}
	switch tg.metric {
	case "":
		tg.metric = session.AAS
	case session.AAS, session.Cosine, session.MSE:
	default:
		return tg, badf("metric %q: want aas, cos or mse", sel.Metric)
	}
	var err error
	if tg.layer, err = l.m.ResolveLayer(sel.Layer); err != nil {
		return tg, err
	}
	if tg.t, err = timestep(l.info, sel.T, sel.Step); err != nil {
		return tg, err
	}
	return tg, nil
}

func timestep(info session.ModelInfo, t *int, step int) (int, error) {
	switch {
	case !info.Timesteps:
		return 0, nil
	case step != 0 && t != nil:
		return 0, badf("give t or step, not both")
	case step != 0:
		v, err := features.StepToT(step)
		if err != nil {
			return 0, badRequest(err)
		}
		return v, nil
	case t == nil:
		return info.DefaultT, nil
	case *t < 0 || *t >= features.Timesteps:
		return 0, badf("t=%d is outside 0..%d", *t, features.Timesteps-1)
	}
	return *t, nil
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
func modelPath(spec Spec) error {
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

// Score answers POST /v1/score.
func (s *Server) Score(ctx context.Context, req ScoreRequest) (ScoreResponse, error) {
	start := time.Now()
	if err := errors.Join(needPath("image_a", req.ImageA), needPath("image_b", req.ImageB), modelPath(req.Spec)); err != nil {
		return ScoreResponse{}, err
	}
	// Images are checked before a model loads: a typo should not wait for one.
	need, err := s.checkImages(ctx, req.ImageA, req.ImageB)
	if err != nil {
		return ScoreResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return ScoreResponse{}, err
	}
	defer release()
	tg, err := resolve(l, req.Select)
	if err != nil {
		return ScoreResponse{}, err
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		return ScoreResponse{}, err
	}
	defer done()
	a, b, err := loadPair(ctx, l.m, req.ImageA, req.ImageB)
	if err != nil {
		return ScoreResponse{}, err
	}
	if err := l.batch.prefetch(ctx, tg.t, a, b); err != nil {
		return ScoreResponse{}, err
	}
	r, err := l.m.Score(ctx, session.Request{A: a, B: b, Layer: tg.layer, T: tg.t, Metric: tg.metric, Token: -1})
	if err != nil {
		return ScoreResponse{}, err
	}
	out := ScoreResponse{
		Record:     session.NewRecord(l.info, l.m.Setup(tg.metric), r),
		LayerLabel: l.info.Layers[tg.layer].Label(), Notice: l.info.Notice, Cached: r.Cached,
	}
	out.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// Sweep answers POST /v1/sweep: one batched forward per timestep serves every layer.
func (s *Server) Sweep(ctx context.Context, req SweepRequest) (SweepResponse, error) {
	if err := errors.Join(needPath("image_a", req.ImageA), needPath("image_b", req.ImageB), modelPath(req.Spec)); err != nil {
		return SweepResponse{}, err
	}
	for _, t := range req.Timesteps {
		if t < 0 || t >= features.Timesteps {
			return SweepResponse{}, badf("timestep %d is outside 0..%d", t, features.Timesteps-1)
		}
	}
	need, err := s.checkImages(ctx, req.ImageA, req.ImageB)
	if err != nil {
		return SweepResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return SweepResponse{}, err
	}
	defer release()
	tg, err := resolve(l, Select{Metric: req.Metric})
	if err != nil {
		return SweepResponse{}, err
	}
	var layers []int // nil: all
	if req.Layer != "" {
		li, err := l.m.ResolveLayer(req.Layer)
		if err != nil {
			return SweepResponse{}, err
		}
		layers = []int{li}
	}
	ts := slices.Clone(req.Timesteps)
	if len(ts) == 0 {
		ts = []int{l.info.DefaultT}
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		return SweepResponse{}, err
	}
	defer done()
	a, b, err := loadPair(ctx, l.m, req.ImageA, req.ImageB)
	if err != nil {
		return SweepResponse{}, err
	}
	return l.m.Sweep(ctx, a, b, layers, ts, tg.metric, nil)
}

// Show answers POST /v1/show.
func (s *Server) Show(ctx context.Context, req ShowRequest) (ShowResponse, error) {
	if err := modelPath(req.Spec); err != nil {
		return ShowResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return ShowResponse{}, err
	}
	defer release()
	tg, err := resolve(l, req.Select)
	if err != nil {
		return ShowResponse{}, err
	}
	out := ShowResponse{
		Setup: l.m.Setup(tg.metric), Point: session.NewPoint(l.info, tg.layer, tg.t),
		LayerLabel: l.info.Layers[tg.layer].Label(), Notice: l.info.Notice,
	}
	if !l.info.Layers[tg.layer].ImageKV {
		why := meaninglessText
		out.Meaningless = &why
	}
	return out, nil
}

// meaninglessText is why a cross-attention layer on text scores every pair 1.
const meaninglessText = "cross-attention on text: keys and values do not depend on the image, so every pair scores 1"

// Rank answers POST /v1/rank: the query's features are computed once, the images run two at
// a time (as `diffsim rank` does, so a 512 px U-Net batch stays small), and files that cannot
// be read are listed as skipped.
func (s *Server) Rank(ctx context.Context, req RankRequest) (RankResponse, error) {
	if err := errors.Join(needPath("query", req.Query), modelPath(req.Spec)); err != nil {
		return RankResponse{}, err
	}
	if req.Top < 0 {
		return RankResponse{}, badf("top %d: want a positive count, or 0 for all", req.Top)
	}
	for _, p := range req.Images {
		if err := needPath("images[]", p); err != nil {
			return RankResponse{}, err
		}
	}
	need, err := s.rankBytes(ctx, req.Query, req.Images)
	if err != nil {
		return RankResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return RankResponse{}, err
	}
	defer release()
	tg, err := resolve(l, req.Select)
	if err != nil {
		return RankResponse{}, err
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		return RankResponse{}, err
	}
	defer done()
	query, err := l.m.LoadContext(ctx, req.Query)
	if err != nil {
		return RankResponse{}, badRequest(err)
	}
	results, skipped, err := l.m.Rank(ctx, query, req.Images, tg.layer, tg.t, tg.metric, nil)
	if err != nil {
		return RankResponse{}, err
	}
	out := RankResponse{
		Query: req.Query, Setup: l.m.Setup(tg.metric), Point: session.NewPoint(l.info, tg.layer, tg.t),
		LayerLabel: l.info.Layers[tg.layer].Label(), Images: len(results), Results: results, Skipped: skipped,
	}
	if !l.info.Layers[tg.layer].ImageKV {
		why := meaninglessText
		out.Meaningless = &why
	}
	if out.Results == nil {
		out.Results = []session.Ranked{}
	}
	if out.Skipped == nil {
		out.Skipped = []session.Skipped{}
	}
	slices.SortFunc(out.Skipped, func(x, y session.Skipped) int { return strings.Compare(x.Path, y.Path) })
	if req.Top > 0 && len(out.Results) > req.Top {
		out.Results = out.Results[:req.Top]
	}
	return out, nil
}
