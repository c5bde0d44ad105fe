package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/batch"
)

// rankJSON is `rank --json`.
type rankJSON struct {
	Query               string      `json:"query"`
	Dir                 string      `json:"dir"`
	Model               string      `json:"model"`
	Layer               string      `json:"layer"`
	LayerShort          string      `json:"layer_short,omitempty"`
	LayerIndex          int         `json:"layer_index"`
	T                   int         `json:"t"`
	Step                int         `json:"step"`
	Metric              string      `json:"metric"`
	HigherIsMoreSimilar bool        `json:"higher_is_more_similar"`
	Meaningless         string      `json:"meaningless,omitempty"`
	Size                int         `json:"size"`
	Seed                int64       `json:"seed"`
	Device              string      `json:"device"`
	Images              int         `json:"images"` // images scored
	Results             []rankEntry `json:"results"`
	Skipped             []skipEntry `json:"skipped"`
}

type rankEntry struct {
	Rank  int     `json:"rank"`
	Path  string  `json:"path"`
	Score float64 `json:"score"`
}

type skipEntry struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

func (a *app) rankCommand() *cobra.Command {
	var top int
	cmd := &cobra.Command{
		Use:   "rank QUERY DIR",
		Short: "The images in DIR (recursive) most similar to QUERY",
		Long: `rank scores every image under DIR (PNG, JPEG, WebP, BMP, TIFF, GIF; recursive; hidden files
and folders left out) against QUERY at one layer and timestep, and prints the -k most
similar, most similar first (for --metric mse: the lowest first). The query's features are
computed once; the others run through the network two at a time. Files that cannot be read
are listed as skipped and do not stop the ranking.`,
		Example: `  diffsim rank query.png photos/ -k 5
  diffsim rank query.png photos/ --layer coarse --t 500 --json`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if top < 0 {
				return usagef("-k %d: want a positive count, or 0 for all", top)
			}
			if fi, err := os.Stat(args[1]); err != nil {
				return err
			} else if !fi.IsDir() {
				return usagef("%s is not a folder (rank QUERY DIR)", args[1])
			}
			tg, err := a.openTarget(cmd, nil)
			if err != nil {
				return err
			}
			defer tg.s.Close()
			s, info, layer, t := tg.s, tg.info, tg.layer, tg.t
			query, err := s.Load(args[0])
			if err != nil {
				return err
			}
			files, unreadable, err := batch.ImageFiles(args[1])
			if err != nil {
				return err
			}
			var skipped []skipEntry
			for p, e := range unreadable {
				skipped = append(skipped, skipEntry{p, e.Error()})
			}
			files = slices.DeleteFunc(files, func(p string) bool { return samePath(p, args[0]) })
			bar := a.newProgress("rank", len(files), 0)
			m := session.Metric(a.metric)
			results, skip, err := rankImages(cmd.Context(), s, query, files, layer, t, m, func() { bar.Add(1) })
			bar.Close()
			if err != nil {
				return err
			}
			skipped = append(skipped, skip...)
			slices.SortFunc(skipped, func(x, y skipEntry) int { return strings.Compare(x.Path, y.Path) })
			for _, sk := range skipped {
				fmt.Fprintf(a.stderr, "diffsim: skipped %s\n", sk.Error)
			}
			l := info.Layers[layer]
			out := rankJSON{
				Query: args[0], Dir: args[1], Model: info.Name, Layer: l.Name, LayerShort: l.Short, LayerIndex: layer,
				T: t, Step: stepOf(info, t), Metric: a.metric, HigherIsMoreSimilar: m.HigherIsMoreSimilar(),
				Size: info.Size, Seed: info.Seed, Device: info.Device, Images: len(results),
				Results: results, Skipped: skipped,
			}
			if !l.ImageKV {
				out.Meaningless = "cross-attention on text: keys and values do not depend on the image, so every pair scores 1"
			}
			if out.Skipped == nil {
				out.Skipped = []skipEntry{}
			}
			if top > 0 && len(out.Results) > top {
				out.Results = out.Results[:top]
			}
			if a.json {
				return json.NewEncoder(a.stdout).Encode(out)
			}
			dir := "higher = more similar"
			if !out.HigherIsMoreSimilar {
				dir = "lower = more similar"
			}
			fmt.Fprintf(a.stdout, "%d most similar of %d images to %s (%s at %s, t=%d; %s)\n", len(out.Results), out.Images, args[0], a.metric, l.Label(), t, dir)
			if out.Meaningless != "" {
				fmt.Fprintf(a.stdout, "note: %s\n", out.Meaningless)
			}
			for _, r := range out.Results {
				fmt.Fprintf(a.stdout, "%3d  %.4f  %s\n", r.Rank, r.Score, r.Path)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&top, "top", "k", 10, "how many to print; 0 for all")
	cmd.Flags().BoolVar(&a.json, "json", false, "print one JSON object")
	return cmd
}

// rankImages scores each file against query and returns them ranked, most similar first
// (ties by path), with the files that could not be read. The query runs through the network
// with the first image, the rest in pairs: N images cost N + 1 feature extractions in about
// (N + 1) / 2 batched runs, and only two decoded images are held at a time.
func rankImages(ctx context.Context, s *session.Session, query *session.Image, files []string, layer, t int, m session.Metric, done func()) ([]rankEntry, []skipEntry, error) {
	var results []rankEntry
	var skipped []skipEntry
	pending := []*session.Image{} // loaded, waiting for their features
	toRun := []*session.Image{query}
	if s.Cached(query, query, t) {
		toRun = nil
	}
	flush := func() error {
		switch len(toRun) {
		case 1:
			if err := s.Prefetch(ctx, toRun[0], toRun[0], t); err != nil {
				return err
			}
		case 2:
			if err := s.Prefetch(ctx, toRun[0], toRun[1], t); err != nil {
				return err
			}
		}
		toRun = toRun[:0]
		for _, img := range pending {
			r, err := s.Score(ctx, session.Request{A: query, B: img, Layer: layer, T: t, Metric: m, Token: -1})
			if err != nil {
				return err
			}
			if math.IsNaN(r.Score) { // an image without any variation has no direction to compare
				skipped = append(skipped, skipEntry{Path: img.Path, Error: img.Path + ": the score is not a number (a blank image?)"})
			} else {
				results = append(results, rankEntry{Path: img.Path, Score: r.Score})
			}
			done()
		}
		pending = pending[:0]
		return nil
	}
	for _, p := range files {
		img, err := s.Load(p)
		if err != nil {
			if !errors.Is(err, features.ErrBadImage) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) && !isReadError(err) {
				return nil, nil, err
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				msg = p + ": " + msg
			}
			skipped = append(skipped, skipEntry{Path: p, Error: msg})
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
	higher := m.HigherIsMoreSimilar()
	slices.SortStableFunc(results, func(x, y rankEntry) int {
		switch {
		case x.Score == y.Score:
			return strings.Compare(x.Path, y.Path)
		case (x.Score > y.Score) == higher:
			return -1
		}
		return 1
	})
	for i := range results {
		results[i].Rank = i + 1
	}
	return results, skipped, nil
}

// isReadError reports a file-system error reading one file (a folder named like an image,
// an I/O error), which skips that file rather than ending the ranking.
func isReadError(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}

// samePath reports whether two paths name the same file, so the query is not ranked against
// itself when it lies inside DIR.
func samePath(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	aa, _ := filepath.Abs(a)
	ab, _ := filepath.Abs(b)
	return aa == ab
}
