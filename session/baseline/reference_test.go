package baseline_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/baseline"
)

var update = flag.Bool("update", false, "rewrite builtin.json from the reference set")

// TestShippedBaselineIsRemade builds the built-in model's baseline from the reference set
// again and checks it equals the one shipped, byte for byte (numbers are stored to 7
// significant digits, far below any difference a change of the model would make). A change
// to the built-in model or the reference set fails here; -update rewrites builtin.json.
func TestShippedBaselineIsRemade(t *testing.T) {
	if testing.Short() {
		t.Skip("scores 64 pairs at 11 timesteps")
	}
	t.Setenv("DIFFSIM_CACHE", t.TempDir()) // the shipped baseline, not one built here
	s, err := session.Open(t.Context(), session.Options{Spec: api.DefaultSpec(), Families: families.All()})
	enginetest.Check(t, err)
	defer s.Close()
	b, err := baseline.BuildReference(t.Context(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("builtin.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	shipped, err := baseline.Shipped()[0].Encode() // the file's bytes: its encoding is stable
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, shipped) {
		t.Errorf("the built-in model's baseline, remade from the reference set, differs from builtin.json (go test ./session/baseline -run TestShippedBaselineIsRemade -update rewrites it)")
	}
	// And the program finds it for the built-in model at its defaults.
	info := s.Info()
	if info.Baseline == nil || info.Baseline.Key != b.Key || info.Baseline.Pairs != baseline.ReferenceImages {
		t.Errorf("the session's baseline is %+v, want the shipped one", info.Baseline)
	}
}
