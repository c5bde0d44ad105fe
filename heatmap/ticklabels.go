package heatmap

import (
	"math"
	"strconv"
	"strings"
)

// TickLabels formats tick values (from Ticks) with as many decimals as their spacing
// needs, so that no two labels read the same (0.9974 and 0.99745 are not both "0.9974"),
// and with a sign only where the value is below zero ("-0.000" is written "0.000").
func TickLabels(ticks []float32) []string {
	if len(ticks) == 0 {
		return nil
	}
	step := math.Inf(1)
	for i := 1; i < len(ticks); i++ {
		if d := math.Abs(float64(ticks[i]) - float64(ticks[i-1])); d > 0 {
			step = min(step, d)
		}
	}
	dec := 3
	if !math.IsInf(step, 1) {
		// Ticks are float32: round the step to 3 significant digits before reading its
		// decimals, so 0.049999997 counts as 0.05.
		s, _ := strconv.ParseFloat(strconv.FormatFloat(step, 'g', 3, 64), 64)
		dec = max(0, int(math.Ceil(-math.Log10(s)-1e-9)))
	}
	for ; ; dec++ {
		out := make([]string, len(ticks))
		seen := make(map[string]bool, len(ticks))
		distinct := true
		for i, t := range ticks {
			out[i] = formatTick(float64(t), dec)
			distinct = distinct && !seen[out[i]]
			seen[out[i]] = true
		}
		if distinct || dec >= 9 {
			return out
		}
	}
}

func formatTick(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.HasPrefix(s, "-") && strings.Trim(s[1:], "0.") == "" {
		return s[1:] // a negative value that rounds to zero is zero
	}
	return s
}
