package heatmap

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestTickLabels(t *testing.T) {
	tests := []struct {
		lo, hi float32
		want   []string
	}{
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{-1, 1, []string{"-1.0", "-0.5", "0.0", "0.5", "1.0"}},
		{0.99725, 0.9976, []string{"0.9973", "0.9974", "0.9975", "0.9976"}},
		{0.99735, 0.99756, []string{"0.99735", "0.99740", "0.99745", "0.99750", "0.99755"}},
		{-0.0013, 0.0011, []string{"-0.0010", "-0.0005", "0.0000", "0.0005", "0.0010"}},
		{120, 480, []string{"100", "200", "300", "400"}[1:]},
	}
	for _, tc := range tests {
		ticks := Ticks(tc.lo, tc.hi, 5)
		got := TickLabels(ticks)
		if !slices.Equal(got, tc.want) {
			t.Errorf("TickLabels(Ticks(%v, %v)) = %q (ticks %v), want %q", tc.lo, tc.hi, got, ticks, tc.want)
		}
	}
}

// TestTickLabelsProperties: over many ranges, labels are distinct, never "-0…", and read
// back within half a step of their tick.
func TestTickLabelsProperties(t *testing.T) {
	for i := range 2000 {
		lo := float32(i%97)/37 - 1.3
		hi := lo + float32(i%13+1)*float32([]float64{1e-4, 1e-3, 1e-2, 0.1, 1}[i%5])
		ticks := Ticks(lo, hi, 5)
		labels := TickLabels(ticks)
		seen := map[string]bool{}
		for j, l := range labels {
			if seen[l] {
				t.Fatalf("Ticks(%v, %v) = %v: repeated label %q in %q", lo, hi, ticks, l, labels)
			}
			seen[l] = true
			if strings.HasPrefix(l, "-") && strings.Trim(l[1:], "0.") == "" {
				t.Fatalf("negative zero label %q for %v", l, ticks[j])
			}
			v, err := strconv.ParseFloat(l, 64)
			if err != nil || (v != 0 && (v < 0) != (ticks[j] < 0)) {
				t.Fatalf("label %q for tick %v: wrong sign or unreadable (%v)", l, ticks[j], err)
			}
		}
	}
}
