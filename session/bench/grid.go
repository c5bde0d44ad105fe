package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/diffsim/diffsim/api"
)

// GridFormat is the version a grid results file's first line carries.
const GridFormat = 1

// GridLayer is one row of a grid: a layer of the model.
type GridLayer struct {
	Index int    `json:"index"` // into the model's layers
	Name  string `json:"name"`
	Short string `json:"short,omitempty"` // the paper's short name (Down0 …), when the layer has one
	Label string `json:"label"`           // the compact name tables and figures show
	// Meaningless marks cross-attention on text: keys and values do not depend on the image,
	// so every pair scores 1 there and every decision is a tie.
	Meaningless bool `json:"meaningless,omitempty"`
}

// NewGridLayer describes one layer of a model for a grid.
func NewGridLayer(l api.Layer) GridLayer {
	return GridLayer{Index: l.Index, Name: l.Name, Short: l.Short, Label: l.Abbrev(), Meaningless: !l.ImageKV}
}

// GridSettings are what a grid run depends on besides its images: the first line of its
// results file, identical in every shard's file. The cells are Layers × T × Metrics, and each
// cell's decisions are those a single-cell run at that layer, t and metric makes.
type GridSettings struct {
	Format  int         `json:"diffsim_grid"`
	Layout  string      `json:"layout"`
	Model   string      `json:"model"`
	Size    int         `json:"size"`
	Seed    int64       `json:"seed"`
	Prompt  string      `json:"prompt,omitempty"`
	CFG     bool        `json:"cfg,omitempty"`
	Layers  []GridLayer `json:"layers"`
	T       []int       `json:"t"`    // DDPM timesteps; [0] for models without timesteps
	Step    []int       `json:"step"` // the reference's step index of each t; 0 where none
	Metrics []string    `json:"metrics"`
	Sets    []string    `json:"sets"`  // the decision sets, as reports show them
	Total   int         `json:"total"` // decisions in the whole benchmark (all shards)
}

// Cells is the number of cells of the grid.
func (g GridSettings) Cells() int { return len(g.Layers) * len(g.T) * len(g.Metrics) }

// Equal reports whether two runs' settings are the same.
func (g GridSettings) Equal(o GridSettings) bool {
	a, _ := json.Marshal(g)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}

func (g GridSettings) String() string {
	names := make([]string, len(g.Layers))
	for i, l := range g.Layers {
		names[i] = l.Label
	}
	ts := make([]string, len(g.T))
	for i, t := range g.T {
		ts[i] = fmt.Sprint(t)
	}
	return fmt.Sprintf("layout %s, model %s, layers %s, t %s, metrics %s, %d px, seed %d, %d decisions",
		g.Layout, g.Model, strings.Join(names, ","), strings.Join(ts, ","), strings.Join(g.Metrics, ","), g.Size, g.Seed, g.Total)
}

// CellSettings are the settings a single-cell run at layer li, timestep ti and metric mi (indices
// into Layers, T and Metrics) records with every decision.
func (g GridSettings) CellSettings(li, ti, mi int) Settings {
	l := g.Layers[li]
	return Settings{
		Layout: g.Layout, Model: g.Model, Layer: l.Name, LayerIndex: l.Index, T: g.T[ti], Step: g.Step[ti],
		Metric: g.Metrics[mi], Size: g.Size, Seed: g.Seed, Prompt: g.Prompt, CFG: g.CFG, Total: g.Total,
	}
}

// TIndex is the position of timestep t in T, or -1.
func (g GridSettings) TIndex(t int) int { return slices.Index(g.T, t) }

// GridRecord is one decision at one timestep, at every layer and metric of the grid: one line
// of a grid results file. Scores hold, per metric, one [score(Ref, A), score(Ref, B)] per layer
// in the order of the settings' Layers; a score that is not a number is null.
type GridRecord struct {
	T       int                       `json:"t"`
	Index   int                       `json:"index"`
	Set     string                    `json:"set"`
	ID      string                    `json:"id"`
	Ref     string                    `json:"ref"`
	A       string                    `json:"a"`
	B       string                    `json:"b"`
	Human   string                    `json:"human"`
	Skipped string                    `json:"skipped,omitempty"` // why no decision could be made (an unreadable image)
	Scores  map[string][][2]api.Float `json:"scores,omitempty"`
}

// newGridRecord starts the record of task at t.
func newGridRecord(task Task, t int) GridRecord {
	return GridRecord{T: t, Index: task.Index, Set: SetOf(task), ID: task.ID, Ref: task.Ref, A: task.A, B: task.B, Human: task.Human}
}

// Task is the decision the record is about.
func (r GridRecord) Task() Task {
	set := r.Set
	if set == SetAll {
		set = ""
	}
	return Task{Index: r.Index, ID: r.ID, Ref: r.Ref, A: r.A, B: r.B, Human: r.Human, Set: set}
}

// Decision is the record's decision at layer li and metric mi (indices into the settings'
// Layers and Metrics) as a single-cell run at that layer, the record's t and that metric
// makes it: the same value, and the same JSON line.
func (r GridRecord) Decision(g GridSettings, li, mi int) Decision {
	s := g.CellSettings(li, g.TIndex(r.T), mi)
	if r.Skipped != "" {
		return Skip(r.Task(), r.Skipped, s)
	}
	sc := r.Scores[g.Metrics[mi]][li]
	return Decide(r.Task(), float64(sc[0]), float64(sc[1]), api.Metric(g.Metrics[mi]).HigherIsMoreSimilar(), s)
}

// outcome is what the decision at layer li and metric mi came to, without building it.
func (r GridRecord) outcome(li int, metric string, higher bool) (made, correct bool) {
	if r.Skipped != "" {
		return false, false
	}
	sc := r.Scores[metric][li]
	a, b := float64(sc[0]), float64(sc[1])
	if math.IsNaN(a) || math.IsNaN(b) {
		return false, false // Decide skips it
	}
	switch {
	case a == b:
		return true, false
	case (a > b) == higher:
		return true, r.Human == "a"
	default:
		return true, r.Human == "b"
	}
}

// check reports a record that does not fit its settings: a t, set or score shape a grid run
// with them cannot have written.
func (r GridRecord) check(g GridSettings) error {
	if g.TIndex(r.T) < 0 {
		return fmt.Errorf("decision %d is at t=%d, which is not one of the grid's timesteps", r.Index, r.T)
	}
	if r.Index < 0 || r.Index >= g.Total {
		return fmt.Errorf("decision %d is outside the benchmark's %d", r.Index, g.Total)
	}
	if !slices.Contains(g.Sets, r.Set) {
		return fmt.Errorf("decision %d is in set %q, not one of %s", r.Index, r.Set, strings.Join(g.Sets, ", "))
	}
	if r.Skipped != "" {
		return nil
	}
	if len(r.Scores) != len(g.Metrics) {
		return fmt.Errorf("decision %d at t=%d has scores for %d metrics, want %d", r.Index, r.T, len(r.Scores), len(g.Metrics))
	}
	for _, m := range g.Metrics {
		if len(r.Scores[m]) != len(g.Layers) {
			return fmt.Errorf("decision %d at t=%d has %d %s scores, want one per layer (%d)", r.Index, r.T, len(r.Scores[m]), m, len(g.Layers))
		}
	}
	return nil
}
