package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
)

// samplePaths are real images (the backend decodes them for the screen), absolute.
func samplePaths(t *testing.T, names ...string) []string {
	t.Helper()
	dir, err := filepath.Abs("../../testdata/samples")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

// comparable prints a result with what legitimately differs between two routes (the image
// pointers, the wall time, whether features were already cached) left out; %v writes floats
// in their shortest exact form, NaN included.
func comparable(r api.Result) string {
	r.Req.A, r.Req.B, r.Elapsed, r.Cached = nil, nil, 0, false
	return fmt.Sprintf("%+v", r)
}

// firstDiff shows where two long printed results part.
func firstDiff(served, local string) string {
	i := 0
	for i < len(served) && i < len(local) && served[i] == local[i] {
		i++
	}
	from := max(i-60, 0)
	return fmt.Sprintf("at byte %d:\nserved …%.160s\nlocal  …%.160s", i, served[from:], local[from:])
}

func TestBackendOverFakes(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, _, _ := startServer(t, Config{}, fk)
	ctx := context.Background()
	be, err := OpenRemote(ctx, unix.Client, model("m").Spec)
	if err != nil {
		t.Fatal(err)
	}
	f := fk.get("m")
	wantInfo := f.Info()
	wantInfo.Caps.Served = true // what Remote adds: the work runs on the server
	if g, w := fmt.Sprintf("%+v", be.Info()), fmt.Sprintf("%+v", wantInfo); g != w {
		t.Errorf("info:\nserved %s\nwant   %s", g, w)
	}
	p := samplePaths(t, "grass.png", "gravel.png")
	a, err := be.Load(p[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := be.Load(p[1])
	if err != nil {
		t.Fatal(err)
	}
	if a.Pixels == nil || a.W == 0 {
		t.Fatalf("Load gave no pixels to show: %+v", a)
	}
	cases := []api.Request{
		{A: a, B: b, Layer: 0, T: 101, Metric: api.AAS, Token: -1},
		{A: a, B: b, Layer: 1, T: 401, Metric: api.MSE, Token: 3},
		{A: b, B: a, Layer: 1, T: 0, Metric: api.Cosine, Token: 0},
	}
	for _, req := range cases {
		got, err := be.Score(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		want, _ := f.Score(ctx, req)
		if g, w := comparable(got), comparable(want); g != w {
			t.Errorf("%+v: %s", req, firstDiff(g, w))
		}
		if got.Req.A != req.A {
			t.Error("the result does not carry the request it answers")
		}
		if !math.IsNaN(got.Global) || !math.IsInf(got.MSE, 1) {
			t.Errorf("global %v, mse %v: NaN and +Inf did not survive", got.Global, got.MSE)
		}
	}
	ls, err := be.LayerScores(ctx, a, b, 401, api.AAS)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.LayerScores(ctx, a, b, 401, api.AAS)
	if g, w := fmt.Sprint(ls), fmt.Sprint(want); g != w {
		t.Errorf("layer scores %s, want %s", g, w)
	}
}

func TestBackendCachedPrefetchStats(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, _, _ := startServer(t, Config{}, fk)
	ctx := context.Background()
	be, err := OpenRemote(ctx, unix.Client, model("m").Spec)
	if err != nil {
		t.Fatal(err)
	}
	p := samplePaths(t, "grass.png", "gravel.png")
	a, _ := be.Load(p[0])
	b, _ := be.Load(p[1])
	if be.Cached(a, b, 101) {
		t.Fatal("cached before anything ran")
	}
	if st := be.Stats(); st.Forwards != 0 || st.CacheBudget != 1<<20 {
		t.Fatalf("stats before any run: %+v", st)
	}
	if err := be.Prefetch(ctx, 101, a, b); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		t    int
		want bool
	}{{101, true}, {102, false}}
	for _, s := range steps {
		if got := be.Cached(a, b, s.t); got != s.want {
			t.Errorf("cached at t=%d after a prefetch at 101: %v, want %v", s.t, got, s.want)
		}
	}
	if st := be.Stats(); st.Forwards != 1 || st.Extracted != 2 {
		t.Errorf("stats after one prefetch of two images: %+v", st)
	}
}

// TestCancelledScoreWithdrawsItsForward: a Score cancelled while its forward runs returns at
// once, the server's forward sees its context end (nothing else waited for it), and the next
// Score is answered.
func TestCancelledScoreWithdrawsItsForward(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	hold := make(chan struct{})
	f := fk.prepare("m", hold)
	unix, _, _ := startServer(t, Config{}, fk)
	be, err := OpenRemote(context.Background(), unix.Client, model("m").Spec)
	if err != nil {
		t.Fatal(err)
	}
	p := samplePaths(t, "grass.png", "gravel.png")
	a, _ := be.Load(p[0])
	b, _ := be.Load(p[1])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := be.Score(ctx, api.Request{A: a, B: b, Layer: 1, T: 401, Token: -1})
		done <- err
	}()
	<-f.started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Score = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled Score did not return")
	}
	select {
	case <-f.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's forward was not cancelled with its only request")
	}
	f.mu.Lock()
	f.release = nil
	f.mu.Unlock()
	r, err := be.Score(context.Background(), api.Request{A: a, B: b, Layer: 1, T: 401, Token: -1})
	if err != nil {
		t.Fatalf("the Score after a cancelled one: %v", err)
	}
	if want, _ := f.Score(context.Background(), api.Request{A: a, B: b, Layer: 1, T: 401, Token: -1}); r.Score != want.Score {
		t.Errorf("score %v, want %v", r.Score, want.Score)
	}
}

func TestExplorerCallsRefuseBadRequests(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, _, _ := startServer(t, Config{}, fk)
	ctx := context.Background()
	p := samplePaths(t, "grass.png", "gravel.png")
	changed := filepath.Join(t.TempDir(), "changed.png")
	data, err := os.ReadFile(p[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	be, err := OpenRemote(ctx, unix.Client, model("m").Spec)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := be.Load(changed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed, append(data, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := api.ImageRef{Path: p[0]}, api.ImageRef{Path: p[1]}
	tok := -2
	cases := []struct {
		name string
		call func() error
		code int
		want string
	}{
		{"layer out of range", func() error {
			_, err := unix.Result(ctx, api.ResultRequest{ModelRef: model("m"), A: a, B: b, Layer: 2})
			return err
		}, 400, "layer 2 is outside 0..1"},
		{"bad metric", func() error {
			_, err := unix.Layers(ctx, api.LayersRequest{ModelRef: model("m"), A: a, B: b, Metric: "l2"})
			return err
		}, 400, `metric "l2"`},
		{"negative token", func() error {
			_, err := unix.Result(ctx, api.ResultRequest{ModelRef: model("m"), A: a, B: b, Token: &tok})
			return err
		}, 400, "token -2"},
		{"missing image", func() error {
			return unix.Prefetch(ctx, api.PrefetchRequest{ModelRef: model("m"), Images: []api.ImageRef{{Path: "/nonexistent.png"}, b}})
		}, 400, "/nonexistent.png"},
		{"no hashes", func() error {
			_, err := unix.Cached(ctx, api.CachedRequest{ModelRef: model("m"), HashA: "x"})
			return err
		}, 400, "hash_a and hash_b are required"},
		{"changed since read", func() error {
			_, err := be.Score(ctx, api.Request{A: stale, B: stale, Token: -1})
			return err
		}, 409, "changed since the client read it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != c.code || !strings.Contains(ae.Message, c.want) {
				t.Fatalf("error %v, want a %d saying %q", err, c.code, c.want)
			}
		})
	}
}

func TestServedBackendRefusesOtherPrompts(t *testing.T) {
	fk := &fakes{byName: map[string]*fakeModel{}}
	unix, _, _ := startServer(t, Config{}, fk)
	be, err := OpenRemote(context.Background(), unix.Client, modelWith("m", func(s *api.Spec) { s.Prompt = "a cat"; s.CFG = true }).Spec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cond api.Conditioning
		err  error
	}{
		{api.Conditioning{Prompt: "a cat", CFG: true}, nil},
		{api.Conditioning{Prompt: "a dog", CFG: true}, ErrServedPrompt},
		{api.Conditioning{Prompt: "a cat"}, ErrServedPrompt},
	}
	for _, c := range cases {
		if err := be.SetConditioning(context.Background(), c.cond); !errors.Is(err, c.err) {
			t.Errorf("SetConditioning(%+v) = %v, want %v", c.cond, err, c.err)
		}
	}
	if got := be.Conditioning(); got != (api.Conditioning{Prompt: "a cat", CFG: true}) {
		t.Errorf("conditioning %+v after refusals", got)
	}
}

// TestServedExplorerEqualsSession: the explorer's calls through a server answer exactly what
// a session in this process answers: every layer, each metric, with and without a token's
// attention row, on the built-in model and on a miniature SD pipeline (text cross-attention
// layers, whose scores are meaningless, included).
func TestServedExplorerEqualsSession(t *testing.T) {
	sd := t.TempDir()
	if err := testgraphs.WriteTinyDiffusers(sd); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		model  string
		prompt string
		ts     []int
	}{
		{"builtin", "builtin", "", []int{101, 901}},
		{"tiny SD", sd, "", []int{401}}, // unconditional: the miniature has no tokenizer for a prompt
	}
	unix, _, _ := startServer(t, Config{Base: session.Options{Families: families.All()}}, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.model != "builtin" {
				t.Skip("the miniature SD pipeline takes seconds to load on a busy 2-core machine")
			}
			ctx := context.Background()
			s, err := session.Open(ctx, session.Options{Spec: modelWith(tc.model, func(s *api.Spec) { s.Device = "cpu"; s.Prompt = tc.prompt }).Spec, Families: families.All()})
			enginetest.Check(t, err)
			defer s.Close()
			be, err := OpenRemote(ctx, unix.Client, modelWith(tc.model, func(s *api.Spec) { s.Device = "cpu"; s.Prompt = tc.prompt }).Spec)
			if err != nil {
				t.Fatal(err)
			}
			want := s.Info()
			want.Caps.Served = true // what Remote adds: the work runs on the server, with the prompt it loaded
			if want.Caps.Prompt {
				want.Caps.PromptFixed = ErrServedPrompt.Error()
			}
			got := be.Info()
			// The same baseline, found on each side: compared by key, not by pointer.
			if (got.Baseline == nil) != (want.Baseline == nil) || got.Baseline != nil && got.Baseline.Key != want.Baseline.Key {
				t.Fatalf("baseline: served %v, local %v", got.Baseline, want.Baseline)
			}
			got.Baseline, want.Baseline = nil, nil
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
				t.Fatalf("info:\nserved %s\nlocal  %s", g, w)
			}
			p := samplePaths(t, "grass.png", "gravel.png")
			la, _ := s.Load(p[0])
			lb, _ := s.Load(p[1])
			sa, err := be.Load(p[0])
			if err != nil {
				t.Fatal(err)
			}
			sb, _ := be.Load(p[1])
			if sa.Hash != la.Hash || sa.W != la.W {
				t.Fatalf("served Load %+v, local %+v", sa, la)
			}
			// A Score cancelled once its forward has begun on the server ends, and leaves the
			// model usable: the same Score again equals the local one.
			ctx1, cancel := context.WithCancel(ctx)
			running := be.Stats().Forwards
			done := make(chan error, 1)
			go func() {
				_, err := be.Score(ctx1, api.Request{A: sa, B: sb, Layer: 0, T: 999, Token: -1})
				done <- err
			}()
			waitFor(t, "the forward to begin on the server", func() bool { return be.Stats().Forwards != running })
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Score: %v", err)
			} else if err == nil {
				t.Log("the forward finished before the cancel reached it")
			}
			lr, err := s.Score(ctx, api.Request{A: la, B: lb, Layer: 0, T: 999, Token: -1})
			if err != nil {
				t.Fatal(err)
			}
			sr, err := be.Score(ctx, api.Request{A: sa, B: sb, Layer: 0, T: 999, Token: -1})
			if err != nil {
				t.Fatalf("the Score after a cancelled one: %v", err)
			}
			if g, w := comparable(sr), comparable(lr); g != w {
				t.Errorf("after a cancel: %s", firstDiff(g, w))
			}

			before := be.Stats()
			for _, tt := range tc.ts {
				if be.Cached(sa, sb, tt) {
					t.Errorf("t=%d cached on the server before any run", tt)
				}
				for _, m := range api.Metrics {
					for layer := range s.Info().Layers {
						for _, tok := range []int{-1, 5} {
							lr, err := s.Score(ctx, api.Request{A: la, B: lb, Layer: layer, T: tt, Metric: m, Token: tok})
							if err != nil {
								t.Fatal(err)
							}
							sr, err := be.Score(ctx, api.Request{A: sa, B: sb, Layer: layer, T: tt, Metric: m, Token: tok})
							if err != nil {
								t.Fatal(err)
							}
							if g, w := comparable(sr), comparable(lr); g != w {
								t.Errorf("t=%d %s layer %d token %d: %s", tt, m, layer, tok, firstDiff(g, w))
							}
						}
					}
					ll, err := s.LayerScores(ctx, la, lb, tt, m)
					if err != nil {
						t.Fatal(err)
					}
					sl, err := be.LayerScores(ctx, sa, sb, tt, m)
					if err != nil {
						t.Fatal(err)
					}
					if g, w := fmt.Sprint(sl), fmt.Sprint(ll); g != w {
						t.Errorf("t=%d %s layer scores: served %s, local %s", tt, m, g, w)
					}
				}
				if !be.Cached(sa, sb, tt) {
					t.Errorf("t=%d not cached on the server after its scores", tt)
				}
			}
			if st := be.Stats(); st.Forwards-before.Forwards != len(tc.ts) || st.Extracted-before.Extracted != 2*len(tc.ts) {
				t.Errorf("server stats %+v after %+v, want %d forwards of 2 images (one per t)", st, before, len(tc.ts))
			}
		})
	}
}

// BenchmarkExplorerScoreCached is the cost of one explorer Score whose features are cached (a
// layer switch): in this process, and through a server on a Unix socket.
//
//	go test -run '^$' -bench ExplorerScoreCached -count 6 ./session/serve/ | benchstat -
func BenchmarkExplorerScoreCached(b *testing.B) {
	unix, _, _ := startServer(b, Config{Base: session.Options{Families: families.All()}}, nil)
	ctx := context.Background()
	s, err := session.Open(ctx, session.Options{Spec: modelWith("builtin", func(s *api.Spec) { s.Device = "cpu" }).Spec, Families: families.All()})
	enginetest.Check(b, err)
	defer s.Close()
	be, err := OpenRemote(ctx, unix.Client, modelWith("builtin", func(s *api.Spec) { s.Device = "cpu" }).Spec)
	if err != nil {
		b.Fatal(err)
	}
	dir, _ := filepath.Abs("../../testdata/samples")
	pa, pb := filepath.Join(dir, "grass.png"), filepath.Join(dir, "gravel.png")
	for _, c := range []struct {
		name string
		back interface {
			Load(string) (*api.Image, error)
			Score(context.Context, api.Request) (api.Result, error)
		}
	}{{"here", s}, {"served", be}} {
		b.Run(c.name, func(b *testing.B) {
			x, _ := c.back.Load(pa)
			y, _ := c.back.Load(pb)
			req := api.Request{A: x, B: y, Layer: 0, T: 101, Metric: api.AAS, Token: 5}
			if _, err := c.back.Score(ctx, req); err != nil { // the features, once
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.back.Score(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
