// Package baseline builds, stores and finds the baselines that calibrate scores
// (features/calibration): the scores of random pairs of unrelated images at every layer,
// timestep and metric of one model and its settings. `diffsim baseline build DIR` builds one
// from a folder; the built-in model ships one made from a deterministic generated reference
// set (ReferenceSet), which a test remakes.
//
// A build costs one network run per image per timestep: pairs are walked as chains
// (a-b, b-c, c-d, …), so each image's features, computed for one pair, serve the next from
// the session's cache, and every layer of one run is scored at once.
package baseline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/schedule"
)

// Scorer is what a build needs from a session: the model, and every layer's score of a
// pair at one timestep. *session.Session is one.
type Scorer interface {
	Info() api.ModelInfo
	LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error)
}

// Options say what Build scores and how the result is described.
type Options struct {
	// Pairs are the pairs of image indexes to score, in order (RandomPairs makes chains of
	// them, which cost one network run per image per timestep).
	Pairs [][2]int
	// Timesteps to score; nil: DefaultTimesteps for models with timesteps, [0] otherwise.
	Timesteps []int
	// Key identifies the model's content and settings (Key); Source says where the images
	// came from, for people.
	Key    string
	Source string
	Model  string // as named by the user
	Prompt string
	CFG    bool
	// Progress, when set, hears of every pair scored at every timestep.
	Progress func(done, total int)
	// Now stamps the baseline; nil leaves it unstamped (the shipped baseline, which a test
	// remakes byte for byte).
	Now func() time.Time
}

// DefaultTimesteps are the timesteps a baseline covers by default: the sweep's grid and
// the schedule's end, so that the explorer can interpolate at any t in 0–999.
func DefaultTimesteps() []int {
	return append(schedule.SweepTimesteps(), schedule.Timesteps-1)
}

// RandomPairs draws n distinct pairs among m images as chains through shuffled orders of
// them (seeded, so a build can be repeated): each chain visits every image once, each image
// is in two consecutive pairs, so one network run per image per timestep serves both. n is
// at most m(m−1)/2; asking for more returns every pair.
func RandomPairs(m, n int, seed uint64) [][2]int {
	if m < 2 || n <= 0 {
		return nil
	}
	n = min(n, m*(m-1)/2)
	seen := map[[2]int]bool{}
	var out [][2]int
	for round := uint64(0); len(out) < n && round < uint64(4*m); round++ {
		r := rand.New(rand.NewPCG(seed, round))
		perm := r.Perm(m)
		for k := 0; k < m && len(out) < n; k++ {
			if m == 2 && k == 1 {
				break // two images have one pair
			}
			a, b := perm[k], perm[(k+1)%m]
			key := [2]int{min(a, b), max(a, b)}
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, [2]int{a, b})
		}
	}
	return out
}

// Build scores opts.Pairs of the n images load returns at every layer, timestep and metric,
// and summarises each cell. An image that cannot be loaded fails the build (the caller
// chooses the images); a pair of two identical images (same content) is skipped, since it is
// not unrelated.
func Build(ctx context.Context, sc Scorer, n int, load func(i int) (*api.Image, error), opts Options) (*calibration.Baseline, error) {
	info := sc.Info()
	ts := opts.Timesteps
	if ts == nil {
		ts = DefaultTimesteps()
	}
	if !info.Timesteps {
		ts = []int{0}
	}
	if len(opts.Pairs) == 0 {
		return nil, fmt.Errorf("no pairs to score: a baseline needs at least two images")
	}
	for _, p := range opts.Pairs {
		if p[0] < 0 || p[0] >= n || p[1] < 0 || p[1] >= n || p[0] == p[1] {
			return nil, fmt.Errorf("pair %v is not two of the %d images", p, n)
		}
	}
	metrics := api.Metrics
	// scores[layer][t][metric] are the pairs' scores; meaningless layers stay empty.
	scores := make([][][][]float64, len(info.Layers))
	for l := range scores {
		scores[l] = make([][][]float64, len(ts))
		for k := range ts {
			scores[l][k] = make([][]float64, len(metrics))
		}
	}
	total, done := len(ts)*len(opts.Pairs), 0
	used := map[int]bool{}
	pairs := 0
	for k, t := range ts {
		// One image loaded at a time beyond the pair: the chain's next pair reuses one.
		var cache [2]struct {
			i   int
			img *api.Image
		}
		cache[0].i, cache[1].i = -1, -1
		get := func(i int) (*api.Image, error) {
			for _, c := range cache {
				if c.i == i {
					return c.img, nil
				}
			}
			img, err := load(i)
			if err != nil {
				return nil, err
			}
			cache[0], cache[1] = cache[1], struct {
				i   int
				img *api.Image
			}{i, img}
			return img, nil
		}
		for _, p := range opts.Pairs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			a, err := get(p[0])
			if err != nil {
				return nil, err
			}
			b, err := get(p[1])
			if err != nil {
				return nil, err
			}
			if a.Hash == b.Hash {
				done++
				if opts.Progress != nil {
					opts.Progress(done, total)
				}
				continue
			}
			if k == 0 {
				used[p[0]], used[p[1]] = true, true
				pairs++
			}
			for mi, m := range metrics {
				ls, err := sc.LayerScores(ctx, a, b, t, m)
				if err != nil {
					return nil, fmt.Errorf("%s and %s at t=%d: %w", a.Path, b.Path, t, err)
				}
				for _, s := range ls {
					if !s.Meaningless && s.Layer >= 0 && s.Layer < len(scores) {
						scores[s.Layer][k][mi] = append(scores[s.Layer][k][mi], s.Score)
					}
				}
			}
			done++
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
	}
	if pairs == 0 {
		return nil, fmt.Errorf("every pair was two copies of one image: a baseline needs different images")
	}
	b := &calibration.Baseline{
		Version: calibration.Version, Key: opts.Key, Model: opts.Model, ModelDescription: info.Description,
		Size: info.Size, Seed: info.Seed, Prompt: opts.Prompt, CFG: opts.CFG, Source: opts.Source,
		Images: len(used), Pairs: pairs, Timesteps: ts, NoTimesteps: !info.Timesteps,
	}
	if opts.Now != nil {
		now := opts.Now().UTC().Truncate(time.Second)
		b.Created = &now
	}
	for _, l := range info.Layers {
		b.Layers = append(b.Layers, l.Name)
	}
	for _, m := range metrics {
		b.Metrics = append(b.Metrics, string(m))
	}
	for l := range scores {
		for k, t := range ts {
			for mi, m := range metrics {
				if c := calibration.NewCell(l, t, string(m), scores[l][k][mi]); c.N > 0 {
					b.Cells = append(b.Cells, c)
				}
			}
		}
	}
	b.Sort()
	return b, nil
}
