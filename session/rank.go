package session

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
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
			if !IsUnreadable(err) {
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

// IsUnreadable reports an error that concerns one input file (not an image, missing, not
// permitted, a folder named like an image, an I/O error): batch work skips that file rather than
// stopping.
func IsUnreadable(err error) bool {
	var pe *fs.PathError
	var fe *imagefile.Error
	return errors.Is(err, imagefile.ErrBadImage) || errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, fs.ErrPermission) || errors.As(err, &pe) || errors.As(err, &fe)
}

// imageExts are the extensions Load decodes (GIF: its first frame).
var imageExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".webp": true,
	".bmp": true, ".tif": true, ".tiff": true, ".gif": true,
}

// IsImageName reports whether a file name has an image extension diffsim decodes.
func IsImageName(name string) bool { return imageExts[strings.ToLower(filepath.Ext(name))] }

// ImageFiles lists the image files under root, recursively, sorted by path. Hidden files and
// folders (a leading dot) are left out; so are files without an image extension. Folders that
// cannot be read are returned in unreadable rather than failing the walk.
func ImageFiles(root string) (files []string, unreadable map[string]error, err error) {
	unreadable = map[string]error{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			unreadable[path] = err
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if path != root && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			if IsImageName(name) {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(files)
	return files, unreadable, nil
}
