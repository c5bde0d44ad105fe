package schedule

import (
	"slices"
	"testing"
)

func TestSweepTimesteps(t *testing.T) {
	got := SweepTimesteps()
	want := []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900}
	if !slices.Equal(got, want) {
		t.Fatalf("SweepTimesteps() = %v, want %v", got, want)
	}
	got[0] = -1 // each call returns its own slice
	if SweepTimesteps()[0] != 0 {
		t.Error("SweepTimesteps shares its slice between calls")
	}
}
