package families

import (
	"strings"
	"testing"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/store"
)

// TestOneFamilyPerKind: every kind the store recognises has exactly one family.
func TestOneFamilyPerKind(t *testing.T) {
	seen := map[store.Kind]int{}
	for _, f := range All() {
		seen[f.Kind()]++
	}
	for _, k := range []store.Kind{store.KindBuiltin, store.KindDiffusion, store.KindViT, store.KindGeneric} {
		if seen[k] != 1 {
			t.Errorf("%d families read %s, want 1", seen[k], k)
		}
	}
	if _, err := All().For(store.KindUnknown); err == nil || !strings.Contains(err.Error(), "diffusion") {
		t.Errorf("an unknown kind: %v, want an error listing what diffsim reads", err)
	}
}

// TestBuiltinThroughTheRegistry: "builtin" resolves to the built-in family, which describes its
// generated graph without a runtime, grids and tapped tensors included.
func TestBuiltinThroughTheRegistry(t *testing.T) {
	fam, src, err := All().Resolve("builtin")
	if err != nil {
		t.Fatal(err)
	}
	d, err := fam.Describe(src, features.OpenOptions{Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != 128 || len(d.Layers) != 3 {
		t.Fatalf("described at %d px with %d layers, want 128 and 3", d.Size, len(d.Layers))
	}
	for _, l := range d.Layers {
		if l.GridH == 0 || l.Tokens != l.GridH*l.GridW || l.Q == "" || !l.ImageKV {
			t.Errorf("%s: grid %dx%d, %d tokens, Q tensor %q", l.Name, l.GridH, l.GridW, l.Tokens, l.Q)
		}
	}
	if _, err := fam.Describe(src, features.OpenOptions{IPAdapter: features.AdapterOptions{Weights: "ip.safetensors"}}); err == nil {
		t.Error("the built-in model accepted an IP-Adapter")
	}
	if _, err := fam.Describe(src, features.OpenOptions{Size: 100}); err == nil {
		t.Error("the built-in model accepted a size it cannot run")
	}
}
