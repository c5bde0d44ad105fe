package session

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/diffsim/diffsim/features"
)

// DefaultSweepT is the sweep's timestep grid: 0, 100, …, 900 (the range's end, 999, is not on
// the grid; add it with 0:999:100,999).
const DefaultSweepT = "0:999:100"

// Sweep is a pair scored at every chosen layer × timestep: the setup once, then one record per
// layer and timestep (layer-major), each equal to `score --json` at that layer and t.
type Sweep struct {
	ImageA string `json:"image_a"`
	ImageB string `json:"image_b"`
	Setup
	Timesteps []int        `json:"timesteps"` // null for models without timesteps
	Layers    []SweepLayer `json:"layers"`
	Scores    []Record     `json:"scores"`
}

// SweepLayer is one row of a sweep.
type SweepLayer struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Short string `json:"short"`
	Kind  string `json:"kind"`
}

// Label is the row's name in tables and figures: the paper's short name first when it has one.
func (l SweepLayer) Label() string {
	if l.Short != "" {
		return l.Short + " " + l.Name
	}
	return l.Name
}

// At is the record of row li (an index into Layers) and column ti (into the timesteps).
func (sw Sweep) At(li, ti int) Record { return sw.Scores[li*sw.Columns()+ti] }

// Columns is the number of timesteps, 1 for a model without them.
func (sw Sweep) Columns() int { return max(len(sw.Timesteps), 1) }

// Sweep scores a and b at each of layers (indexes into Info().Layers; nil: all) and each
// timestep in ts (ignored for models without timesteps). The network runs once per timestep
// for every layer; afterStep is called after each timestep, for progress.
func (s *Session) Sweep(ctx context.Context, a, b *Image, layers, ts []int, m Metric, afterStep func()) (Sweep, error) {
	info := s.Info()
	if layers == nil {
		for i := range info.Layers {
			layers = append(layers, i)
		}
	}
	sw := Sweep{ImageA: a.Path, ImageB: b.Path, Setup: s.Setup(m), Timesteps: ts}
	if !info.Timesteps {
		sw.Timesteps, ts = nil, []int{0}
	}
	for _, li := range layers {
		l := info.Layers[li]
		sw.Layers = append(sw.Layers, SweepLayer{Index: li, Name: l.Name, Short: l.Short, Kind: string(l.Kind)})
	}
	grid := make([][]Record, len(ts)) // [t][layer position]
	for ti, t := range ts {
		for _, li := range layers {
			r, err := s.score(ctx, Request{A: a, B: b, Layer: li, T: t, Metric: m, Token: -1}, layers)
			if err != nil {
				return Sweep{}, err
			}
			grid[ti] = append(grid[ti], NewRecord(info, sw.Setup, r))
		}
		if afterStep != nil {
			afterStep()
		}
	}
	for lp := range layers {
		for ti := range ts {
			sw.Scores = append(sw.Scores, grid[ti][lp])
		}
	}
	return sw, nil
}

// WriteCSV writes one row per layer and timestep; a score that is not a number is empty.
func (sw Sweep) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"layer_index", "layer", "layer_short", "t", "step", "metric", "score", "meaningless"})
	for _, r := range sw.Scores {
		_ = cw.Write([]string{
			strconv.Itoa(r.LayerIndex), r.Layer, r.LayerShort, optInt(r.T), optInt(r.Step),
			string(sw.Metric), optFloat(r.Score), strconv.FormatBool(r.Meaningless != nil),
		})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the sweep as a table: layers down, timesteps across, a star on scores that
// carry no image information.
func (sw Sweep) WriteTable(w io.Writer) error {
	var b strings.Builder
	dir := "higher = more similar"
	if !sw.HigherIsMoreSimilar {
		dir = "lower = more similar"
	}
	fmt.Fprintf(&b, "%s (%s), %s vs %s, %d px, seed %d\n", sw.Metric, dir, sw.ImageA, sw.ImageB, sw.Size, sw.Seed)
	nameW := len("layer")
	for _, l := range sw.Layers {
		nameW = max(nameW, len(l.Label()))
	}
	var line strings.Builder
	fmt.Fprintf(&line, "%-*s", nameW, "layer")
	for ti := range sw.Columns() {
		col := "score"
		if sw.Timesteps != nil {
			col = "t=" + strconv.Itoa(sw.Timesteps[ti])
		}
		fmt.Fprintf(&line, "  %7s ", col)
	}
	b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	note := ""
	for li, l := range sw.Layers {
		line.Reset()
		fmt.Fprintf(&line, "%-*s", nameW, l.Label())
		for ti := range sw.Columns() {
			r := sw.At(li, ti)
			mark := " "
			if r.Meaningless != nil {
				mark, note = "*", *r.Meaningless
			}
			v := "    n/a"
			if r.Score != nil {
				v = fmt.Sprintf("%7.4f", *r.Score)
			}
			fmt.Fprintf(&line, "  %s%s", v, mark)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	if note != "" {
		fmt.Fprintf(&b, "* %s\n", note)
	}
	fmt.Fprintf(&b, "model: %s\n", sw.ModelDescription)
	_, err := io.WriteString(w, b.String())
	return err
}

// ParseTimesteps reads a list of DDPM timesteps and ranges ("100,400", "0:999:100,999"), sorted
// and without duplicates; errors name the --t flag.
func ParseTimesteps(list string) ([]int, error) {
	ts, err := parseInts(list, "--t", 0, features.Timesteps-1)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return ts, nil
}

// ParseSteps reads a list of the reference code's step indices (t = 1001 − step) into sorted
// DDPM timesteps without duplicates; errors name the --step flag.
func ParseSteps(list string) ([]int, error) {
	steps, err := parseInts(list, "--step", 1, features.Timesteps)
	if err != nil {
		return nil, usagef("%v", err)
	}
	var ts []int
	for _, st := range steps {
		t, err := features.StepToT(st)
		if err != nil {
			return nil, usagef("%v", err)
		}
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return slices.Compact(ts), nil
}

// parseInts parses a comma-separated list of integers and inclusive ranges START:END[:STEP]
// ("100,400", "0:999:100", "0:900:100,999"). Ranges run from START up to END in steps of STEP
// (default 1), END included only when the step lands on it. Values must lie in [lo, hi]; the
// result is sorted and without duplicates. what names the flag in errors.
func parseInts(s, what string, lo, hi int) ([]int, error) {
	var out []int
	add := func(v int) error {
		if v < lo || v > hi {
			return fmt.Errorf("%s: %d is outside %d..%d", what, v, lo, hi)
		}
		out = append(out, v)
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, ":")
		nums := make([]int, len(fields))
		for i, f := range fields {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("%s %q: %q is not an integer (want a list like 100,400 or a range like 0:999:100)", what, s, f)
			}
			nums[i] = n
		}
		switch len(nums) {
		case 1:
			if err := add(nums[0]); err != nil {
				return nil, err
			}
		case 2, 3:
			step := 1
			if len(nums) == 3 {
				step = nums[2]
			}
			if step <= 0 || nums[1] < nums[0] {
				return nil, fmt.Errorf("%s %q: range %s needs START ≤ END and a positive STEP", what, s, part)
			}
			for v := nums[0]; v <= nums[1]; v += step {
				if err := add(v); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("%s %q: %q is not START:END[:STEP]", what, s, part)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %q: no values", what, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func optInt(v *int) string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(*v)
}

func optFloat(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}
