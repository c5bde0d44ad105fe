package serve

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
)

// TestMemoryBoundWithRealModels: the built-in model's footprint is measured across its first
// forward (ONNX Runtime's working memory, tens of MB), not across its load (about 1 MB), so
// forty seeds (forty sessions) under a bound of about three such models keep a few loaded,
// every one of them counted at its real size, and what the server counts stays under the
// bound after every request.
func TestMemoryBoundWithRealModels(t *testing.T) {
	enginetest.Runtime(t)
	samples, _ := filepath.Abs("../../testdata/samples")
	a, b := filepath.Join(samples, "grass.png"), filepath.Join(samples, "brick.png")
	base := session.Options{Spec: api.DefaultSpec(), Families: families.All()}
	base.Spec.Device = "cpu"
	probe := New(Config{Base: base})
	c := startWith(t, probe)
	req := func(seed int64) api.ScoreRequest {
		return api.ScoreRequest{ModelRef: modelWith("builtin", func(s *api.Spec) { s.Seed, s.Device = seed, "cpu" }), ImageA: a, ImageB: b}
	}
	if _, err := c.Score(context.Background(), req(1)); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	one := ms.Models[0].Bytes
	if !ms.Models[0].Measured || one < 10<<20 {
		t.Fatalf("the built-in model measured %d bytes (measured: %v); its first forward alone takes tens of MB", one, ms.Models[0].Measured)
	}

	bound := 3*one + one/2
	srv := New(Config{Base: base, MaxBytes: bound})
	c = startWith(t, srv)
	for seed := range int64(40) {
		if _, err := c.Score(context.Background(), req(seed)); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		ms, err := c.Models(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ms.Bytes+ms.WorkBytes > bound {
			t.Fatalf("after seed %d: %d models holding %d bytes, over the bound %d", seed, len(ms.Models), ms.Bytes+ms.WorkBytes, bound)
		}
		for _, m := range ms.Models {
			if m.Measured && m.Bytes < 10<<20 {
				t.Fatalf("after seed %d: seed %d's model counted at %d bytes", seed, m.Seed, m.Bytes)
			}
		}
		if seed == 39 && len(ms.Models) > 5 {
			t.Errorf("%d models loaded after forty seeds under a bound of about three", len(ms.Models))
		}
	}
}
