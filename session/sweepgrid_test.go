package session

import (
	"slices"
	"testing"

	"github.com/diffsim/diffsim/features/schedule"
)

// TestSweepGridIsTheExplorers: the sweep command's default --t and the explorer's sweep view
// are one grid, so a cell read in one is found in the other.
func TestSweepGridIsTheExplorers(t *testing.T) {
	ts, err := ParseTimesteps(DefaultSweepT)
	if err != nil {
		t.Fatal(err)
	}
	if want := schedule.SweepTimesteps(); !slices.Equal(ts, want) {
		t.Errorf("sweep --t %s = %v; the explorer's sweep uses %v", DefaultSweepT, ts, want)
	}
}
