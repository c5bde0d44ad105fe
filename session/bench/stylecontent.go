package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diffsim/diffsim/features/imagefile"
)

// The grid layout's two decision sets.
const (
	SetStyle   = "style"
	SetContent = "content"
	// SetAll names the one decision set of every other layout.
	SetAll = "all"
)

// StyleContent reads the grid layout: PATH/STYLE/CONTENT.ext, one image per style and content
// (the content is the file name without its extension, so s1/circle.png and s2/circle.jpg
// share a content). It makes two decision sets whose candidates differ in one label only:
//
//	style:   reference (s, c); A = (s, c′), same style, other content; B = (s′, c′), other style
//	content: reference (s, c); A = (s′, c), same content, other style; B = (s′, c′), other content
//
// so the style set asks whether the metric follows style with content held equal between the
// candidates, and the content set the converse. Every (reference, A) pair is used once; the
// other label of B is drawn with seed, as the triplet layout draws its negatives. The two
// sets are shuffled with seed and interleaved (style, content, style, …), so --max and shards
// keep both sets balanced.
func StyleContent(root string, seed uint64) (*Dataset, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var styles, contents []string
	img := map[[2]string]string{} // (style, content) → path relative to root
	dupes := 0
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		has := false
		for _, f := range files {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") || !imagefile.IsImageName(f.Name()) {
				continue
			}
			content := strings.TrimSuffix(f.Name(), filepath.Ext(f.Name()))
			k := [2]string{e.Name(), content}
			if _, dup := img[k]; dup {
				dupes++ // circle.png and circle.jpg: the first in name order is kept
				continue
			}
			img[k] = filepath.Join(e.Name(), f.Name())
			contents = append(contents, content)
			has = true
		}
		if has {
			styles = append(styles, e.Name())
		}
	}
	slices.Sort(contents)
	contents = slices.Compact(contents)
	if len(styles) < 2 || len(contents) < 2 {
		return nil, fmt.Errorf("%w: %s: the grid layout needs PATH/STYLE/CONTENT.ext with at least two style folders and two contents (file names), found %d and %d", ErrLayout, root, len(styles), len(contents))
	}
	rng := rand.New(rand.NewPCG(seed, 0x13198a2e03707344))
	d := &Dataset{Layout: "grid", Root: root}
	var style, content []Task
	noNeg := 0
	// draw picks one of the candidates with an image, or "" when none has one.
	draw := func(cands []string, has func(string) bool) string {
		var ok []string
		for _, c := range cands {
			if has(c) {
				ok = append(ok, c)
			}
		}
		if len(ok) == 0 {
			return ""
		}
		return ok[rng.IntN(len(ok))]
	}
	for _, s := range styles {
		for _, c := range contents {
			ref, ok := img[[2]string{s, c}]
			if !ok {
				continue
			}
			for _, c2 := range contents {
				a, ok := img[[2]string{s, c2}]
				if c2 == c || !ok {
					continue
				}
				s2 := draw(others(styles, s), func(x string) bool { _, ok := img[[2]string{x, c2}]; return ok })
				if s2 == "" {
					noNeg++
					continue
				}
				b := img[[2]string{s2, c2}]
				style = append(style, Task{ID: ref + "|" + a + "|" + b, Ref: ref, A: a, B: b, Human: "a", Set: SetStyle})
			}
			for _, s2 := range styles {
				a, ok := img[[2]string{s2, c}]
				if s2 == s || !ok {
					continue
				}
				c2 := draw(others(contents, c), func(x string) bool { _, ok := img[[2]string{s2, x}]; return ok })
				if c2 == "" {
					noNeg++
					continue
				}
				b := img[[2]string{s2, c2}]
				content = append(content, Task{ID: ref + "|" + a + "|" + b, Ref: ref, A: a, B: b, Human: "a", Set: SetContent})
			}
		}
	}
	rng.Shuffle(len(style), func(i, j int) { style[i], style[j] = style[j], style[i] })
	rng.Shuffle(len(content), func(i, j int) { content[i], content[j] = content[j], content[i] })
	for i := range max(len(style), len(content)) {
		if i < len(style) {
			d.Tasks = append(d.Tasks, style[i])
		}
		if i < len(content) {
			d.Tasks = append(d.Tasks, content[i])
		}
	}
	if missing := len(styles)*len(contents) - len(img); missing > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d of the %d style × content images are missing", missing, len(styles)*len(contents)))
	}
	if noNeg > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d triplets without a candidate B left out", noNeg))
		d.Dropped = noNeg
	}
	if dupes > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d images with a style and content already seen (another extension) left out", dupes))
	}
	return d, nil
}

// others is xs without x.
func others(xs []string, x string) []string {
	out := make([]string, 0, len(xs))
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}

// Sets lists the decision sets of a dataset in the order reports show them: the grid
// layout's style and content, or all.
func (d *Dataset) Sets() []string {
	if d.Layout == "grid" {
		return []string{SetStyle, SetContent}
	}
	return []string{SetAll}
}

// SetOf is the decision set a task belongs to.
func SetOf(t Task) string {
	if t.Set == "" {
		return SetAll
	}
	return t.Set
}
