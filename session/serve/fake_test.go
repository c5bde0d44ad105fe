package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/session"
)

// fakeModel stands in for a warm session: it records its batched forwards and can hold them
// until a test lets go.
type fakeModel struct {
	name   string
	bytes  int64
	closed atomic.Bool

	mu       sync.Mutex
	cache    int64           // what Stats reports as its feature cache
	forwards [][]string      // image paths of each PrefetchImages call
	kept     map[string]bool // hash@t of the images whose forwards finished
	started  chan struct{}
	release  chan struct{} // nil: forwards return at once
	gone     chan struct{} // closed when a held forward sees its context end
}

func newFake(name string, bytes int64) *fakeModel {
	return &fakeModel{name: name, bytes: bytes, started: make(chan struct{}, 64), gone: make(chan struct{})}
}

func (f *fakeModel) Info() api.ModelInfo {
	return api.ModelInfo{Name: f.name, Family: "fake", Description: "a fake for tests", Device: "cpu",
		Layers:    []api.Layer{{Name: "l0", ImageKV: true}, {Index: 1, Name: "l1", Short: "Up0", ImageKV: true}},
		Timesteps: true, DefaultT: 101, Size: 64, Seed: api.DefaultSeed}
}

func (f *fakeModel) Bytes() int64 { return f.bytes }

// Load hashes the file as a session does (sha256 of its bytes) without decoding it.
func (f *fakeModel) Load(path string) (*api.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &api.Image{Path: path, Hash: hex.EncodeToString(sum[:])}, nil
}

func (f *fakeModel) Resolve(sel api.Selection) (api.Target, error) { return f.Info().Resolve(sel) }

func (f *fakeModel) Conditioning() api.Conditioning { return api.Conditioning{} }

func (f *fakeModel) SetConditioning(_ context.Context, c api.Conditioning) error {
	if !c.IsZero() {
		return api.UsageError(fmt.Errorf("fake: no prompt"))
	}
	return nil
}

func (f *fakeModel) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	f.mu.Lock()
	var paths []string
	for _, img := range imgs {
		paths = append(paths, filepath.Base(img.Path))
	}
	f.forwards = append(f.forwards, paths)
	rel := f.release
	f.mu.Unlock()
	f.started <- struct{}{}
	if rel != nil {
		select {
		case <-rel:
		case <-ctx.Done():
			close(f.gone)
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kept == nil {
		f.kept = map[string]bool{}
	}
	for _, img := range imgs {
		f.kept[fmt.Sprintf("%s@%d", img.Hash, t)] = true
	}
	return nil
}

func (f *fakeModel) Cached(a, b *api.Image, t int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kept[fmt.Sprintf("%s@%d", a.Hash, t)] && f.kept[fmt.Sprintf("%s@%d", b.Hash, t)]
}

func (f *fakeModel) Stats() api.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.Stats{Forwards: len(f.forwards), Extracted: len(f.kept), CacheBudget: 1 << 20, CacheBytes: f.cache}
}

func (f *fakeModel) setCache(n int64) {
	f.mu.Lock()
	f.cache = n
	f.mu.Unlock()
}

func (f *fakeModel) LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	var out []api.LayerScore
	for i := range f.Info().Layers {
		r, err := f.Score(ctx, api.Request{A: a, B: b, Layer: i, T: t, Metric: m, Token: -1})
		if err != nil {
			return nil, err
		}
		out = append(out, api.LayerScore{Layer: i, T: t, Score: r.Score})
	}
	return out, nil
}

func (f *fakeModel) Score(ctx context.Context, req api.Request) (api.Result, error) {
	// A score that depends on the pair, the layer and t, so mixed-up answers show.
	// Global is NaN (no global embedding) and the maps hold a NaN too, as a real model's may
	// for a zero feature: the wire must carry them.
	v := float64(len(req.A.Path)+len(req.B.Path))/1000 + float64(req.Layer)/10 + float64(req.T)/1e4
	r := api.Result{Req: req, Score: v, AtoB: v, BtoA: v, Metric: req.Metric, HigherIsBetter: true,
		FeatureCosine: v / 2, MSE: math.Inf(1), Global: math.NaN(),
		MapA: api.Map{W: 2, H: 1, Values: []float32{float32(v), float32(math.NaN())}},
		MapB: api.Map{W: 1, H: 1, Values: []float32{-float32(v)}}}
	if req.Token >= 0 {
		r.AttnRow = api.Map{W: 1, H: 1, Values: []float32{float32(req.Token)}}
	}
	return r, nil
}

func (f *fakeModel) Sweep(ctx context.Context, a, b *api.Image, layers, ts []int, m api.Metric, _ func()) (api.Sweep, error) {
	sw := api.Sweep{ImageA: a.Path, ImageB: b.Path, Setup: api.SetupOf(f, m), Timesteps: ts}
	for _, t := range ts {
		if err := f.Prefetch(ctx, t, a, b); err != nil {
			return sw, err
		}
		for _, li := range layers {
			r, _ := f.Score(ctx, api.Request{A: a, B: b, Layer: li, T: t, Metric: m})
			sw.Scores = append(sw.Scores, api.NewRecord(f.Info(), sw.Setup, r))
		}
	}
	return sw, nil
}

func (f *fakeModel) Rank(ctx context.Context, q *api.Image, files []string, layer, t int, m api.Metric, _ func()) ([]api.Ranked, []api.Skipped, error) {
	var out []api.Ranked
	for _, p := range files {
		img, err := f.Load(p)
		if err != nil {
			return nil, nil, err
		}
		r, _ := f.Score(ctx, api.Request{A: q, B: img, Layer: layer, T: t, Metric: m})
		out = append(out, api.Ranked{Rank: len(out) + 1, Record: api.NewRecord(f.Info(), api.SetupOf(f, m), r)})
	}
	return out, nil, nil
}

func (f *fakeModel) Close() error { f.closed.Store(true); return nil }

func (f *fakeModel) forwardsSeen() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.forwards...)
}

// fakes hands out one fake per model name and remembers them.
type fakes struct {
	mu     sync.Mutex
	byName map[string]*fakeModel
	bytes  int64
	loads  atomic.Int32
}

func (fs *fakes) open(_ context.Context, o session.Options) (api.Scorer, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.loads.Add(1)
	if f, ok := fs.byName[o.Spec.Model]; ok && !f.closed.Load() {
		return f, nil
	}
	f := newFake(o.Spec.Model, fs.bytes)
	if old, ok := fs.byName[o.Spec.Model]; ok {
		f.release = old.release
	}
	fs.byName[o.Spec.Model] = f
	return f, nil
}

func (fs *fakes) get(name string) *fakeModel {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.byName[name]
}

// prepare makes a fake for name before the server asks, so a test can hold its forwards.
func (fs *fakes) prepare(name string, release chan struct{}) *fakeModel {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := newFake(name, fs.bytes)
	f.release = release
	fs.byName[name] = f
	return f
}

// testClient is a client of a test server, with where it connects.
type testClient struct {
	*api.Client
	base   string // http://host:port, or http://diffsim over the socket
	socket string // the Unix socket; "" over HTTP
}

// startServer runs a server over fakes on a real Unix socket and on HTTP at loopback, and
// returns a client for each.
func startServer(t testing.TB, cfg Config, fk *fakes) (unix, tcp *testClient, srv *Server) {
	t.Helper()
	if fk != nil {
		cfg.Open = fk.open
	}
	srv = New(cfg)
	unix, tcp = serveBoth(t, srv)
	return unix, tcp, srv
}

// startWith runs srv on a Unix socket until the test ends and returns a client of it.
func startWith(t testing.TB, srv *Server) *testClient {
	unix, _ := serveBoth(t, srv)
	return unix
}

func serveBoth(t testing.TB, srv *Server) (unix, tcp *testClient) {
	t.Helper()
	dir, err := os.MkdirTemp("", "diffsim-serve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ul, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	hl, err := ListenHTTP("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ul, hl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	uc, err := api.Dial(context.Background(), sock, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := hl.Addr().(*net.TCPAddr).String()
	return &testClient{uc, "http://diffsim", sock}, &testClient{api.NewHTTPClient(addr), "http://" + addr, ""}
}

// images writes n small PNG files, each with other bytes, and returns their paths.
func images(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("img%02d.png", i))
		m := image.NewGray(image.Rect(0, 0, 2, 2))
		m.Pix[0] = uint8(i)
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func intp(v int) *int { return &v }

// model is the request part naming the model name with every default.
func model(name string) api.ModelRef {
	r := api.ModelRef{Spec: api.DefaultSpec()}
	r.Model = name
	return r
}

// keep is r with a keep_alive.
func keep(r api.ModelRef, keepAlive string) api.ModelRef {
	r.KeepAlive = keepAlive
	return r
}

// modelWith is model(name) changed by set.
func modelWith(name string, set func(*api.Spec)) api.ModelRef {
	r := model(name)
	set(&r.Spec)
	return r
}
