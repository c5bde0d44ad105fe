package video

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/diffsim/diffsim/api"
)

// Scorer is what scoring needs of an api.Scorer.
type Scorer interface {
	Prefetch(ctx context.Context, t int, imgs ...*api.Image) error
	Score(ctx context.Context, req api.Request) (api.Result, error)
}

// Settings choose the layer, timestep and metric every frame is scored with.
type Settings struct {
	Layer  int
	T      int
	Metric api.Metric
	// OnFrame, when set, hears about each frame as soon as it is scored.
	OnFrame func(FrameScore)
}

// FrameScore is one frame's scores.
type FrameScore struct {
	Index      int        `json:"index"` // position in the clip, after --every
	Frame      int        `json:"frame"` // frame number in the input
	Name       string     `json:"name"`
	ToFirst    api.Float  `json:"to_first"`
	ToPrevious *api.Float `json:"to_previous"` // null for the first frame
}

// Extreme is the frame where a curve is lowest or highest.
type Extreme struct {
	Index int       `json:"index"`
	Frame int       `json:"frame"`
	Name  string    `json:"name"`
	Score api.Float `json:"score"`
}

// Summary condenses one curve over frames 1…N−1 (frame 0 against itself says nothing).
type Summary struct {
	Mean api.Float `json:"mean"`
	Min  Extreme   `json:"min"`
	Max  Extreme   `json:"max"`
}

// Result is a clip's consistency: both curves and their summaries.
type Result struct {
	Frames      []FrameScore `json:"frames"`
	ToFirst     Summary      `json:"to_first"`
	ToPrevious  Summary      `json:"to_previous"`
	Meaningless string       `json:"-"` // why the layer's scores say nothing, if so (Report carries it as JSON)
}

// Score scores every frame of src against the first frame and against the previous one.
//
// Frames are fetched two at a time and run through the network as one batch; the pairs that
// involve them are scored right away, while their features (and the first frame's, used by
// every pair) are the most recently used in the session's cache. So N frames cost N feature
// extractions in ⌈N/2⌉ network runs, and no more than four frames are held in memory.
func Score(ctx context.Context, s Scorer, src Source, o Settings) (Result, error) {
	var res Result
	var first, prev *api.Image
	score := func(a, b *api.Image) (api.Float, error) {
		r, err := s.Score(ctx, api.Request{A: a, B: b, Layer: o.Layer, T: o.T, Metric: o.Metric, Token: -1})
		if err != nil {
			return 0, err
		}
		if math.IsNaN(r.Score) {
			return 0, fmt.Errorf("%s against %s: the %s metric has no value at this layer; try --metric aas", b.Path, a.Path, o.Metric)
		}
		res.Meaningless = r.Meaningless
		return api.Float(r.Score), nil
	}
	for {
		pair, err := nextTwo(ctx, src)
		if err != nil {
			return res, err
		}
		if len(pair) == 0 {
			break
		}
		imgs := make([]*api.Image, len(pair))
		for i, f := range pair {
			if imgs[i], err = Image(f); err != nil {
				return res, badInput(err)
			}
		}
		if err := s.Prefetch(ctx, o.T, imgs...); err != nil {
			return res, err
		}
		for i, f := range pair {
			img := imgs[i]
			if first == nil {
				first = img
			}
			fs := FrameScore{Index: len(res.Frames), Frame: f.Frame, Name: f.Name}
			if fs.ToFirst, err = score(first, img); err != nil {
				return res, err
			}
			if prev != nil {
				v, err := score(prev, img)
				if err != nil {
					return res, err
				}
				fs.ToPrevious = &v
			}
			prev = img
			res.Frames = append(res.Frames, fs)
			if o.OnFrame != nil {
				o.OnFrame(fs)
			}
		}
	}
	if len(res.Frames) < 2 {
		return res, badInput(fmt.Errorf("a clip needs at least two frames; this one has %d (check --every and --max-frames)", len(res.Frames)))
	}
	res.ToFirst = summarise(res.Frames[1:], func(f FrameScore) api.Float { return f.ToFirst })
	res.ToPrevious = summarise(res.Frames[1:], func(f FrameScore) api.Float { return *f.ToPrevious })
	return res, nil
}

// nextTwo reads up to two frames; none at the end of the clip.
func nextTwo(ctx context.Context, src Source) ([]Frame, error) {
	var out []Frame
	for len(out) < 2 {
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func summarise(frames []FrameScore, value func(FrameScore) api.Float) Summary {
	var s Summary
	var sum api.Float
	for i, f := range frames {
		v := value(f)
		sum += v
		e := Extreme{Index: f.Index, Frame: f.Frame, Name: f.Name, Score: v}
		if i == 0 || v < s.Min.Score {
			s.Min = e
		}
		if i == 0 || v > s.Max.Score {
			s.Max = e
		}
	}
	s.Mean = sum / api.Float(len(frames))
	return s
}

// Worst is the least similar frame of a curve: its minimum, or its maximum for a metric where
// lower is more similar.
func (s Summary) Worst(m api.Metric) Extreme {
	if m.HigherIsMoreSimilar() {
		return s.Min
	}
	return s.Max
}
