package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/diffsim/diffsim/api"
)

// LoadReport reads results into a report: a grid results file, a single-cell one (a grid of
// one cell), or a folder of either's shard files (what is there, merged).
func LoadReport(path string) (Report, error) {
	var tally *Tally
	g, err := eachRecord(path, func(g GridSettings, r GridRecord) {
		if tally == nil {
			tally = NewTally(g)
		}
		tally.Add(r)
	})
	if err != nil {
		return Report{}, err
	}
	if tally == nil {
		tally = NewTally(g)
	}
	return tally.Report(), nil
}

// CellDecisions reads from results (as LoadReport does) the decisions of one cell: set, and
// layer li, timestep ti and metric mi (indices into the settings), as the single-cell run at
// that layer, t and metric records them, by index.
func CellDecisions(path, set string, li, ti, mi int) (GridSettings, []Decision, error) {
	var out []Decision
	g, err := eachRecord(path, func(g GridSettings, r GridRecord) {
		if r.Set == set && r.T == g.T[ti] {
			out = append(out, r.Decision(g, li, mi))
		}
	})
	if err == nil && (li >= len(g.Layers) || ti >= len(g.T) || mi >= len(g.Metrics)) {
		err = fmt.Errorf("%s has no cell %d, %d, %d", path, li, ti, mi)
	}
	return g, out, err
}

// Disagreements are the decisions where the metric disagreed with the label or the human
// vote (ties included), worst first: by how far the score of the wrong candidate was ahead.
func Disagreements(ds []Decision) []Decision {
	var out []Decision
	for _, d := range ds {
		if d.Skipped == "" && !d.Correct {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b Decision) int {
		ma, mb := Margin(a), Margin(b)
		switch {
		case ma < mb:
			return -1
		case ma > mb:
			return 1
		}
		return a.Index - b.Index
	})
	return out
}

// Margin is how far a decision's choice was from the right one, in its metric's units: the
// score of the candidate the label prefers minus that of the other, signed so that positive
// means the metric preferred the right one (a correct decision) and negative a wrong one.
func Margin(d Decision) float64 {
	m := float64(d.ScoreA - d.ScoreB)
	if !api.Metric(d.Metric).HigherIsMoreSimilar() {
		m = -m
	}
	if d.Human == "b" {
		m = -m
	}
	return m
}

// eachRecord reads results as grid records: a grid file, a single-cell file (its decisions
// as a grid of one cell), or a folder of either's shards, merged.
func eachRecord(path string, each func(GridSettings, GridRecord)) (GridSettings, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return GridSettings{}, err
	}
	if fi.IsDir() {
		files, _, err := ListDir(path)
		if err != nil {
			return GridSettings{}, err
		}
		grid, err := IsGridFile(files[0].Path)
		if err != nil {
			return GridSettings{}, err
		}
		if grid {
			g, _, err := MergeGridDir(path, true, nil, each)
			return g, err
		}
		recs, s, err := MergeDir(path, true)
		if err != nil {
			return GridSettings{}, err
		}
		return cellRecords(s, recs, each), nil
	}
	grid, err := IsGridFile(path)
	if err != nil {
		return GridSettings{}, err
	}
	if grid {
		return ReadGridFile(path, func(g GridSettings, l GridLine) error {
			each(g, l.GridRecord)
			return nil
		})
	}
	f, err := os.Open(path)
	if err != nil {
		return GridSettings{}, err
	}
	defer f.Close()
	recs, _, _, err := ReadResults(f, path)
	if err != nil {
		return GridSettings{}, err
	}
	if len(recs) == 0 {
		return GridSettings{}, fmt.Errorf("%w: %s holds no decisions", ErrIncomplete, path)
	}
	return cellRecords(recs[0].Settings, recs, each), nil
}

// cellRecords reads a single-cell run's decisions as the records of a grid of one cell.
func cellRecords(s Settings, recs []Record, each func(GridSettings, GridRecord)) GridSettings {
	g := GridSettings{
		Format: GridFormat, Layout: s.Layout, Model: s.Model, Size: s.Size, Seed: s.Seed, Prompt: s.Prompt, CFG: s.CFG,
		Layers: []GridLayer{{Index: s.LayerIndex, Name: s.Layer, Label: s.Layer}},
		T:      []int{s.T}, Step: []int{s.Step}, Metrics: []string{s.Metric}, Sets: []string{SetAll}, Total: s.Total,
	}
	for _, r := range recs {
		gr := GridRecord{T: s.T, Index: r.Index, Set: SetAll, ID: r.ID, Ref: r.Ref, A: r.A, B: r.B, Human: r.Human, Skipped: r.Skipped}
		if r.Skipped == "" {
			gr.Scores = map[string][][2]api.Float{s.Metric: {{api.Float(r.ScoreA), api.Float(r.ScoreB)}}}
		}
		each(g, gr)
	}
	return g
}

// errFound stops a scan at the record wanted.
var errFound = errors.New("found")

// FirstTask is the first decision in results, for a check that its images can be found.
func FirstTask(path string) (Task, error) {
	var t Task
	found := false
	fi, err := os.Stat(path)
	if err != nil {
		return t, err
	}
	if fi.IsDir() {
		files, _, err := ListDir(path)
		if err != nil {
			return t, err
		}
		path = files[0].Path
	}
	grid, err := IsGridFile(path)
	if err != nil {
		return t, err
	}
	if grid {
		_, err = ReadGridFile(path, func(_ GridSettings, l GridLine) error {
			t, found = l.Task(), true
			return errFound
		})
		if errors.Is(err, errFound) {
			err = nil
		}
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			var recs []Record
			recs, _, _, err = ReadResults(f, path)
			f.Close()
			if len(recs) > 0 {
				r := recs[0]
				t, found = Task{Index: r.Index, ID: r.ID, Ref: r.Ref, A: r.A, B: r.B, Human: r.Human}, true
			}
		}
	}
	if err == nil && !found {
		err = fmt.Errorf("%w: %s holds no decisions", ErrIncomplete, path)
	}
	return t, err
}
