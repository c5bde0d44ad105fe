package session

import (
	"context"
	"math"
	"strings"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
)

// Rank scores each file against query at one layer and timestep and returns them ranked, most
// similar first (ties by path), with the files that could not be read. The query runs through
// the network with the first image, the rest in pairs: N images cost N + 1 feature extractions
// in about (N + 1) / 2 batched runs, and only two decoded images are held at a time. done is
// called once per file, for progress.
func (s *Session) Rank(ctx context.Context, query *api.Image, files []string, layer, t int, m api.Metric, done func()) ([]api.Ranked, []api.Skipped, error) {
	if done == nil {
		done = func() {}
	}
	info, setup := s.Info(), api.SetupOf(s, m)
	var results []api.Ranked
	var skipped []api.Skipped
	pending := []*api.Image{} // loaded, waiting for their features
	toRun := []*api.Image{query}
	if s.Cached(query, query, t) {
		toRun = nil
	}
	flush := func() error {
		if len(toRun) > 0 {
			if err := s.prefetch(ctx, t, []int{layer}, toRun...); err != nil {
				return err
			}
		}
		toRun = toRun[:0]
		for _, img := range pending {
			r, err := s.Score(ctx, api.Request{A: query, B: img, Layer: layer, T: t, Metric: m, Token: -1})
			if err != nil {
				return err
			}
			if math.IsNaN(r.Score) { // an image without any variation has no direction to compare
				skipped = append(skipped, api.Skipped{Path: img.Path, Error: img.Path + ": the score is not a number (a blank image?)"})
			} else {
				results = append(results, api.Ranked{Record: api.NewRecord(info, setup, r)})
			}
			done()
		}
		pending = pending[:0]
		return nil
	}
	for _, p := range files {
		img, err := s.LoadContext(ctx, p)
		if err != nil {
			if !imagefile.IsUnreadable(err) {
				return nil, nil, err
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				msg = p + ": " + msg
			}
			skipped = append(skipped, api.Skipped{Path: p, Error: msg})
			done()
			continue
		}
		pending = append(pending, img)
		toRun = append(toRun, img)
		if len(toRun) == 2 {
			if err := flush(); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	api.SortRanked(results, m.HigherIsMoreSimilar())
	return results, skipped, nil
}
