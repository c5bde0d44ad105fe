package session

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/schedule"
)

// DefaultSweepT is the sweep's timestep grid: 0, 100, …, 900 (the range's end, 999, is not on
// the grid; add it with 0:999:100,999).
const DefaultSweepT = "0:999:100"

// Sweep scores a and b at each of layers (indexes into Info().Layers; nil: all) and each
// timestep in ts (ignored for models without timesteps): the setup once, then one record per
// layer and timestep (layer-major), each equal to `score --json` at that layer and t. The network runs once per timestep
// for every layer; afterStep is called after each timestep, for progress.
func (s *Session) Sweep(ctx context.Context, a, b *api.Image, layers, ts []int, m api.Metric, afterStep func()) (api.Sweep, error) {
	info := s.Info()
	if layers == nil {
		for i := range info.Layers {
			layers = append(layers, i)
		}
	}
	sw := api.Sweep{ImageA: a.Path, ImageB: b.Path, Setup: api.SetupOf(s, m), Timesteps: ts}
	if !info.Timesteps {
		sw.Timesteps, ts = nil, []int{0}
	}
	for _, li := range layers {
		l := info.Layers[li]
		sw.Layers = append(sw.Layers, api.SweepLayer{Index: li, Name: l.Name, Short: l.Short, Kind: string(l.Kind)})
	}
	grid := make([][]api.Record, len(ts)) // [t][layer position]
	for ti, t := range ts {
		for _, li := range layers {
			r, err := s.score(ctx, api.Request{A: a, B: b, Layer: li, T: t, Metric: m, Token: -1}, layers)
			if err != nil {
				return api.Sweep{}, err
			}
			grid[ti] = append(grid[ti], api.NewRecord(info, sw.Setup, r))
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

// ParseTimesteps reads a list of DDPM timesteps and ranges ("100,400", "0:999:100,999"), sorted
// and without duplicates; errors name the --t flag.
func ParseTimesteps(list string) ([]int, error) {
	ts, err := parseInts(list, "--t", 0, schedule.Timesteps-1)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return ts, nil
}

// ParseSteps reads a list of the reference code's step indices (t = 1001 − step) into sorted
// DDPM timesteps without duplicates; errors name the --step flag.
func ParseSteps(list string) ([]int, error) {
	steps, err := parseInts(list, "--step", 1, schedule.Timesteps)
	if err != nil {
		return nil, usagef("%v", err)
	}
	var ts []int
	for _, st := range steps {
		t, err := schedule.StepToT(st)
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
