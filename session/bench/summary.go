package bench

import (
	"fmt"
	"io"
	"math"
)

// Summary is the result of a set of decisions.
type Summary struct {
	Settings
	Made     int     `json:"decisions"` // decisions made (not skipped)
	Correct  int     `json:"correct"`
	Skipped  int     `json:"skipped"`
	Accuracy float64 `json:"accuracy"`
	Low      float64 `json:"ci95_low"` // Wilson score interval, 95%
	High     float64 `json:"ci95_high"`
	Complete bool    `json:"complete"` // every decision of the benchmark is here
	// Shard and ShardSize describe a shard's run (bench --shard): its part of the benchmark.
	// Complete still means the whole benchmark, which only a merge of the shards is.
	Shard     string `json:"shard,omitempty"`
	ShardSize int    `json:"shard_decisions,omitempty"`
}

// Summarize counts decisions made under s.
func Summarize(s Settings, ds []Decision) Summary {
	sum := Summary{Settings: s}
	for _, d := range ds {
		switch {
		case d.Skipped != "":
			sum.Skipped++
		case d.Correct:
			sum.Made++
			sum.Correct++
		default:
			sum.Made++
		}
	}
	if sum.Made > 0 { // JSON has no NaN: no decisions leaves the zeros
		sum.Accuracy, sum.Low, sum.High = Wilson(sum.Correct, sum.Made)
	}
	sum.Complete = sum.Made+sum.Skipped == s.Total
	return sum
}

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the proportion k/n and its 95% Wilson score interval; NaNs when n is 0. Unlike
// the normal approximation it stays inside [0, 1] and behaves near 0% and 100% accuracy.
func Wilson(k, n int) (p, lo, hi float64) {
	if n <= 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	nf := float64(n)
	p = float64(k) / nf
	z2 := z95 * z95
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi = max(0, centre-half), min(1, centre+half)
	// At 0 and n the bound is 0 or 1 exactly; rounding would leave 1e-16 off it.
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return p, lo, hi
}

// WriteText prints the summary for people: the accuracy line first.
func (s Summary) WriteText(w io.Writer) error {
	acc := "accuracy n/a (no decisions)"
	if s.Made > 0 {
		acc = fmt.Sprintf("accuracy %.2f%%  95%% CI [%.2f%%, %.2f%%] (Wilson)  %d of %d correct",
			100*s.Accuracy, 100*s.Low, 100*s.High, s.Correct, s.Made)
	}
	state := "complete"
	scope, total := s.Layout, s.Total
	switch {
	case s.Shard != "" && s.Made+s.Skipped >= s.ShardSize:
		scope, total = s.Layout+" shard "+s.Shard, s.ShardSize
		state = fmt.Sprintf("shard complete; the benchmark has %d: merge the shards", s.Total)
	case s.Shard != "":
		scope, total = s.Layout+" shard "+s.Shard, s.ShardSize
		state = fmt.Sprintf("INCOMPLETE: %d of the shard missing", s.ShardSize-s.Made-s.Skipped)
	case !s.Complete:
		state = fmt.Sprintf("INCOMPLETE: %d missing", s.Total-s.Made-s.Skipped)
	}
	_, err := fmt.Fprintf(w, "%s\n%s: %d of %d decisions made, %d skipped (%s)\nmodel %s, layer %s (%d), t=%d (step %d), metric %s, %d px, seed %d\n",
		acc, scope, s.Made, total, s.Skipped, state, s.Model, s.Layer, s.LayerIndex, s.T, s.Step, s.Metric, s.Size, s.Seed)
	return err
}
