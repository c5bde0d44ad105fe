package baseline

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
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
	s, err := session.Open(t.Context(), session.Options{Model: "builtin", Seed: session.DefaultSeed, Families: families.All()})
	enginetest.Check(t, err)
	defer s.Close()
	b, err := BuildReference(t.Context(), s, nil)
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
	if !bytes.Equal(got, shippedBuiltin) {
		t.Errorf("the built-in model's baseline, remade from the reference set, differs from builtin.json (go test ./session/baseline -run TestShippedBaselineIsRemade -update rewrites it)")
	}
	// And the program finds it for the built-in model at its defaults.
	info := s.Info()
	key, err := Key(Spec{Source: mustBuiltin(t), Size: info.Size, Seed: info.Seed})
	if err != nil {
		t.Fatal(err)
	}
	found, err := Find(t.TempDir(), key)
	if err != nil || found == nil || found.Pairs != ReferenceImages {
		t.Errorf("Find(builtin) = %v, %v", found, err)
	}
}

func mustBuiltin(t *testing.T) features.Source {
	t.Helper()
	src, err := builtinSource()
	if err != nil {
		t.Fatal(err)
	}
	return src
}
