package baseline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/store"
	"github.com/diffsim/diffsim/session/bench/synth"
)

// The reference set the shipped baselines are made from.
const (
	// ReferenceImages is every style synth draws: consecutive images differ in texture,
	// palette and shape, so the chain of pairs through them is of unrelated images.
	ReferenceImages = 64
	referenceSeed   = 1
	// ReferenceSource names the set in the baseline and wherever the baseline is named (the
	// baseline's Images says how many).
	ReferenceSource = "built-in reference set"
)

// ShippedModels are the models diffsim ships a baseline for, each at its default size,
// seed and conditioning, made from ReferenceSet at its working size: the built-in model, and
// toy-sd, whose training images are of the reference set's kind (synth's styles and shapes),
// so that its scores read against pairs of the kind of images it knows.
var ShippedModels = []string{store.Builtin, "toy-sd"}

// ReferenceSet draws the reference images at size × size pixels: image i has synth's style
// i and shape i mod 8. It is a pure function of its arguments.
func ReferenceSet(size int) ([]*api.Image, error) {
	styles, err := synth.Styles(ReferenceImages)
	if err != nil {
		return nil, err
	}
	contents, err := synth.Contents(synth.MaxContents)
	if err != nil {
		return nil, err
	}
	out := make([]*api.Image, len(styles))
	for i, s := range styles {
		c := contents[i%len(contents)]
		img := synth.Render(s, c, size, referenceSeed)
		sum := sha256.Sum256(img.Pix)
		out[i] = &api.Image{Path: fmt.Sprintf("reference/%s/%s", s.Name, c.Name), Hash: hex.EncodeToString(sum[:]),
			W: size, H: size, Pixels: img}
	}
	return out, nil
}

// ReferencePairs are the chain through the reference set in its order, closed into a
// cycle: every image is in two pairs, and no pair shares a texture, a palette or a shape.
func ReferencePairs(n int) [][2]int {
	out := make([][2]int, n)
	for i := range out {
		out[i] = [2]int{i, (i + 1) % n}
	}
	return out
}

// BuildReference builds the baseline of the model session s holds from the reference set at
// the session's working size. With s on one of ShippedModels at its defaults, the result is
// that model's shipped baseline.
func BuildReference(ctx context.Context, s Scorer, progress func(done, total int)) (*calibration.Baseline, error) {
	info := s.Info()
	imgs, err := ReferenceSet(info.Size)
	if err != nil {
		return nil, err
	}
	key, err := SpecKey(api.Spec{Model: info.Name, Seed: info.Seed}, info.Size)
	if err != nil {
		return nil, err
	}
	return Build(ctx, s, len(imgs), func(i int) (*api.Image, error) { return imgs[i], nil }, Options{
		Pairs: ReferencePairs(len(imgs)), Key: key, Model: info.Name, Progress: progress,
		Source: ReferenceSource,
	})
}
