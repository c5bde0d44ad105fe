package video

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/imagefile"

	"github.com/diffsim/diffsim/engine/enginetest"

	"golang.org/x/image/draw"

	"github.com/diffsim/diffsim/session"
)

// memSource serves frames from memory.
type memSource struct {
	frames []Frame
	next   int
}

func (s *memSource) Next(ctx context.Context) (Frame, error) {
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if s.next >= len(s.frames) {
		return Frame{}, io.EOF
	}
	s.next++
	return s.frames[s.next-1], nil
}
func (s *memSource) Len() int     { return len(s.frames) }
func (s *memSource) Close() error { return nil }

// fakeScorer scores frames i and j (told apart by their pixels) as 1 − |v_i − v_j|/100 and
// records what it was asked.
type fakeScorer struct {
	prefetched [][2]int
	scored     [][2]int
}

func pixelValue(img *api.Image) int {
	r, _, _, _ := img.Pixels.At(0, 0).RGBA()
	return int(r >> 8)
}

func (f *fakeScorer) Prefetch(_ context.Context, _ int, imgs ...*api.Image) error {
	f.prefetched = append(f.prefetched, [2]int{pixelValue(imgs[0]), pixelValue(imgs[len(imgs)-1])})
	return nil
}

func (f *fakeScorer) Score(_ context.Context, req api.Request) (api.Result, error) {
	a, b := pixelValue(req.A), pixelValue(req.B)
	f.scored = append(f.scored, [2]int{a, b})
	return api.Result{Score: 1 - math.Abs(float64(a-b))/100}, nil
}

func clip(t testing.TB, values ...int) *memSource {
	s := &memSource{}
	for i, v := range values {
		s.frames = append(s.frames, Frame{Frame: 10 * i, Name: fmt.Sprintf("f%d.png", i), Data: solid(t, uint8(v))})
	}
	return s
}

func TestScoreCurvesAndSummaries(t *testing.T) {
	f := &fakeScorer{}
	// values: a drift of 1 per frame, then a jump of 20 at frame 3
	res, err := Score(context.Background(), f, clip(t, 0, 1, 2, 22, 23), Settings{Metric: api.AAS})
	if err != nil {
		t.Fatal(err)
	}
	wantFirst := []float64{1, 0.99, 0.98, 0.78, 0.77}
	wantPrev := []float64{math.NaN(), 0.99, 0.99, 0.80, 0.99}
	for i, fr := range res.Frames {
		if fr.Index != i || fr.Frame != 10*i || fr.Name != fmt.Sprintf("f%d.png", i) {
			t.Errorf("frame %d: index %d, frame %d, name %q", i, fr.Index, fr.Frame, fr.Name)
		}
		if math.Abs(float64(fr.ToFirst)-wantFirst[i]) > 1e-12 {
			t.Errorf("frame %d: to first %v, want %v", i, fr.ToFirst, wantFirst[i])
		}
		switch {
		case i == 0 && fr.ToPrevious != nil:
			t.Errorf("frame 0 has a previous score %v", *fr.ToPrevious)
		case i > 0 && (fr.ToPrevious == nil || math.Abs(float64(*fr.ToPrevious)-wantPrev[i]) > 1e-12):
			t.Errorf("frame %d: to previous %v, want %v", i, fr.ToPrevious, wantPrev[i])
		}
	}
	if m := (0.99 + 0.98 + 0.78 + 0.77) / 4; math.Abs(float64(res.ToFirst.Mean)-m) > 1e-12 {
		t.Errorf("mean to first %v, want %v (frame 0 against itself left out)", res.ToFirst.Mean, m)
	}
	if res.ToPrevious.Min.Index != 3 || res.ToPrevious.Min.Frame != 30 || res.ToFirst.Min.Index != 4 || res.ToPrevious.Max.Score != 0.99 {
		t.Errorf("extremes: to previous min %+v max %+v, to first min %+v", res.ToPrevious.Min, res.ToPrevious.Max, res.ToFirst.Min)
	}
	if w := res.ToPrevious.Worst(api.MSE); w != res.ToPrevious.Max {
		t.Errorf("worst under mse is %+v, want the maximum", w)
	}
	// Two frames to a network run, and each pair scored while its features are fresh.
	if want := [][2]int{{0, 1}, {2, 22}, {23, 23}}; !slices.Equal(f.prefetched, want) {
		t.Errorf("prefetched %v, want %v", f.prefetched, want)
	}
	wantScored := [][2]int{{0, 0}, {0, 1}, {0, 1}, {0, 2}, {1, 2}, {0, 22}, {2, 22}, {0, 23}, {22, 23}}
	if !slices.Equal(f.scored, wantScored) {
		t.Errorf("scored %v, want %v", f.scored, wantScored)
	}
}

func TestScoreNeedsTwoFrames(t *testing.T) {
	for _, values := range [][]int{nil, {5}} {
		_, err := Score(context.Background(), &fakeScorer{}, clip(t, values...), Settings{})
		if !errors.Is(err, api.ErrUsage) {
			t.Errorf("%d frames: %v, want a usage error", len(values), err)
		}
	}
}

// cancelAfter cancels its context once n frames have been read.
type cancelAfter struct {
	Source
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Next(ctx context.Context) (Frame, error) {
	if c.n == 0 {
		c.cancel()
	}
	c.n--
	return c.Source.Next(ctx)
}

func TestScoreStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeScorer{}
	res, err := Score(ctx, f, &cancelAfter{Source: clip(t, 1, 2, 3, 4, 5, 6, 7, 8), n: 4, cancel: cancel}, Settings{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if len(res.Frames) != 4 || len(f.prefetched) != 2 {
		t.Errorf("after cancelling at frame 4: %d frames scored, %d runs; want 4 and 2", len(res.Frames), len(f.prefetched))
	}
}

// pan writes n frames sliding across a sample photo, a few pixels per frame.
func pan(t testing.TB, photo string, n int) *memSource {
	t.Helper()
	src, _, err := imagefile.Load(context.Background(), filepath.Join("..", "..", "testdata", "samples", photo), imagefile.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s := &memSource{}
	for i := range n {
		dst := image.NewRGBA(image.Rect(0, 0, 160, 160))
		draw.Copy(dst, image.Point{}, src, image.Rect(5*i, 3*i, 5*i+160, 3*i+160), draw.Src, nil)
		s.frames = append(s.frames, Frame{Frame: i, Name: fmt.Sprintf("pan%d", i), Data: encode(t, dst)})
	}
	return s
}

func openSession(t testing.TB) *session.Session {
	t.Helper()
	s, err := session.Open(context.Background(), session.Options{Spec: spec64(), Families: families.All()})
	enginetest.Check(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// N frames cost N feature extractions, two to a network run: not 2N for the two curves.
func TestEachFrameIsExtractedOnce(t *testing.T) {
	for _, n := range []int{2, 7, 12} {
		s := openSession(t)
		res, err := Score(context.Background(), s, pan(t, "astronaut.png", n), Settings{Layer: 1, T: 101, Metric: api.AAS})
		if err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		if len(res.Frames) != n || st.Extracted != n || st.Forwards != (n+1)/2 {
			t.Errorf("%d frames: %d scored, %d feature extractions in %d runs; want %d in %d", n, len(res.Frames), st.Extracted, st.Forwards, n, (n+1)/2)
		}
		if res.Frames[0].ToFirst != 1 {
			t.Errorf("frame 0 against itself scores %v, want 1", res.Frames[0].ToFirst)
		}
	}
}

// BenchmarkScore reports the feature extractions per frame, which must stay 1.
func BenchmarkScore(b *testing.B) {
	const n = 16
	frames := pan(b, "astronaut.png", n).frames
	b.ReportAllocs()
	var extracted, runs int
	for b.Loop() {
		b.StopTimer() // a fresh session each time, so that nothing is cached; not timed
		s, err := session.Open(context.Background(), session.Options{Spec: spec64(), Families: families.All()})
		enginetest.Check(b, err)
		b.StartTimer()
		if _, err := Score(context.Background(), s, &memSource{frames: frames}, Settings{Layer: 1, T: 101}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st := s.Stats()
		extracted, runs = extracted+st.Extracted, runs+st.Forwards
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(extracted)/float64(b.N*n), "extractions/frame")
	b.ReportMetric(float64(runs)/float64(b.N*n), "runs/frame")
}

// spec64 is the built-in model at 64 px.
func spec64() api.Spec {
	sp := api.DefaultSpec()
	sp.Size = 64
	return sp
}
