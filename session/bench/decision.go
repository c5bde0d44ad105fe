// Package bench reads similarity benchmarks into lists of yes/no decisions (triplet class
// folders, 2AFC CSVs, NIGHTS, TID2013), records each decision as one JSON line, resumes and
// merges those records (shards of one run combine into exactly the single run's result), and
// reports accuracy with a Wilson confidence interval.
package bench

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/diffsim/diffsim/api"
)

// Task is one decision to make: is candidate A or B more similar to Ref? Paths are relative to
// the dataset's root (or absolute), so records stay comparable across machines.
type Task struct {
	Index int    // position in the benchmark's decision list; shards split on it
	ID    string // stable name of the decision (file names, a CSV id)
	Ref   string
	A, B  string
	Human string // the right answer: "a" or "b"
	// Set names the decision set the task belongs to where a layout has several (the grid
	// layout's "style" and "content"); "" for layouts with one.
	Set string
}

// Dataset is a benchmark read into tasks.
type Dataset struct {
	Layout string
	Root   string // folder the task paths are relative to
	Tasks  []Task
	// Dropped counts rows the layout left out (ties in the human vote, missing references …),
	// and Notes says why, for one line on stderr.
	Dropped int
	Notes   []string
}

// Path resolves a task path against the dataset's root.
func (d *Dataset) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.Root, p)
}

// Settings are what a decision depends on besides its images; every record carries them, and
// records made under different settings are never mixed.
type Settings struct {
	Layout     string `json:"layout"`
	Model      string `json:"model"`
	Layer      string `json:"layer"`
	LayerIndex int    `json:"layer_index"`
	T          int    `json:"t"`
	Step       int    `json:"step"` // the reference code's step index for T; 0 for models without timesteps
	Metric     string `json:"metric"`
	Size       int    `json:"size"`
	Seed       int64  `json:"seed"`
	Prompt     string `json:"prompt,omitempty"` // diffusion conditioning; "" is unconditional
	CFG        bool   `json:"cfg,omitempty"`
	Total      int    `json:"total"` // decisions in the whole benchmark (all shards)
}

func (s Settings) String() string {
	return fmt.Sprintf("layout %s, model %s, layer %s (%d), t=%d, metric %s, %d px, seed %d, %d decisions",
		s.Layout, s.Model, s.Layer, s.LayerIndex, s.T, s.Metric, s.Size, s.Seed, s.Total)
}

// Decision is one decision made: one JSON line of a results file.
type Decision struct {
	Index   int       `json:"index"`
	ID      string    `json:"id"`
	Ref     string    `json:"ref"`
	A       string    `json:"a"`
	B       string    `json:"b"`
	Human   string    `json:"human"`
	ScoreA  api.Float `json:"score_a"` // score(Ref, A); ±Inf as "+Inf"/"-Inf" (an infinite MSE decides)
	ScoreB  api.Float `json:"score_b"`
	Choice  string    `json:"choice"` // "a", "b", or "tie" (counted as wrong)
	Correct bool      `json:"correct"`
	// Skipped, when set, says why no decision could be made (an unreadable image); skipped
	// decisions are recorded so a resumed run does not retry them, and left out of accuracy.
	Skipped string `json:"skipped,omitempty"`
	Settings
}

// Decide fills in the choice from the two scores. higherIsMoreSimilar is the metric's direction.
func Decide(t Task, scoreA, scoreB float64, higherIsMoreSimilar bool, s Settings) Decision {
	d := Decision{Index: t.Index, ID: t.ID, Ref: t.Ref, A: t.A, B: t.B, Human: t.Human, ScoreA: api.Float(scoreA), ScoreB: api.Float(scoreB), Settings: s}
	if math.IsNaN(scoreA) || math.IsNaN(scoreB) {
		d.ScoreA, d.ScoreB = 0, 0
		d.Skipped = "a score is not a number (an image without any variation?)"
		return d
	}
	switch {
	case scoreA == scoreB:
		d.Choice = "tie"
	case (scoreA > scoreB) == higherIsMoreSimilar:
		d.Choice = "a"
	default:
		d.Choice = "b"
	}
	d.Correct = d.Choice == t.Human
	return d
}

// Skip records a task that could not be decided.
func Skip(t Task, why string, s Settings) Decision {
	return Decision{Index: t.Index, ID: t.ID, Ref: t.Ref, A: t.A, B: t.B, Human: t.Human, Skipped: why, Settings: s}
}

// Shard is one part of a benchmark split N ways: decision i belongs to shard i mod N.
type Shard struct{ I, N int }

// All is the whole benchmark as one shard.
var All = Shard{0, 1}

// ParseShard reads "I/N" (0 ≤ I < N).
func ParseShard(s string) (Shard, error) {
	var sh Shard
	var rest string
	if n, _ := fmt.Sscanf(s+"\n", "%d/%d%s", &sh.I, &sh.N, &rest); n != 2 || sh.N < 1 || sh.I < 0 || sh.I >= sh.N {
		return Shard{}, fmt.Errorf("--shard %q: want I/N with 0 ≤ I < N, e.g. 0/4 (as Slurm's $SLURM_ARRAY_TASK_ID/4)", s)
	}
	return sh, nil
}

// Has reports whether decision index i belongs to the shard.
func (s Shard) Has(i int) bool { return s.N <= 1 || i%s.N == s.I }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }
