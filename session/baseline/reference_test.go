package baseline_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/baseline"
)

var update = flag.Bool("update", false, "rewrite the shipped baselines (MODEL.json) from the reference set")

// TestShippedBaselinesAreRemade builds each shipped model's baseline from the reference set
// again and checks it equals the one shipped, byte for byte (numbers are stored to 7
// significant digits, far below any difference a change of the model would make). A change
// to a shipped model or the reference set fails here; -update rewrites MODEL.json.
func TestShippedBaselinesAreRemade(t *testing.T) {
	if testing.Short() {
		t.Skip("scores 64 pairs at 11 timesteps with each shipped model")
	}
	t.Setenv("DIFFSIM_CACHE", t.TempDir()) // the shipped baselines, not ones built here
	shipped := map[string]*calibration.Baseline{}
	for _, b := range baseline.Shipped() {
		shipped[b.Model] = b
	}
	for _, model := range baseline.ShippedModels {
		t.Run(model, func(t *testing.T) {
			spec := api.DefaultSpec()
			spec.Model = model
			s, err := session.Open(t.Context(), session.Options{Spec: spec, Families: families.All()})
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
				if err := os.WriteFile(model+".json", got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if shipped[model] == nil {
				t.Fatalf("no shipped baseline for %s", model)
			}
			want, err := shipped[model].Encode() // the file's bytes: its encoding is stable
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s's baseline, remade from the reference set, differs from %s.json (go test ./session/baseline -run TestShippedBaselinesAreRemade -update rewrites it)", model, model)
			}
			// And the program finds it for the model at its defaults.
			info := s.Info()
			if info.Baseline == nil || info.Baseline.Key != b.Key || info.Baseline.Pairs != baseline.ReferenceImages {
				t.Errorf("the session's baseline is %+v, want the shipped one", info.Baseline)
			}
		})
	}
}
