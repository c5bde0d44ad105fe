// Package schedule is the DDPM noise schedule of Stable Diffusion 1.x and the one mapping
// between its timesteps and the reference code's step indices: ᾱ_t, the forward process that
// noises a latent (or, for the built-in model, the pixels), the seeded noise both images of a
// pair share, and the sweep's timestep grid. docs/method.md says why these numbers.
//
// It is a leaf (standard library only), so the wire package and the explorer can name
// timesteps without linking a runtime.
package schedule

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Timesteps is the number of DDPM timesteps of Stable Diffusion's schedule (t ∈ [0, 999]).
const Timesteps = 1000

// AlphasCumprod is ᾱ_t of SD 1.x's "scaled_linear" schedule:
// β_i = (linspace(√0.00085, √0.012, 1000)_i)², ᾱ_t = Π_{i≤t} (1 − β_i).
func AlphasCumprod() []float64 {
	out := make([]float64, Timesteps)
	lo, hi := math.Sqrt(0.00085), math.Sqrt(0.012)
	prod := 1.0
	for i := range out {
		s := lo + (hi-lo)*float64(i)/float64(Timesteps-1)
		prod *= 1 - s*s
		out[i] = prod
	}
	return out
}

// StepToT maps the reference code's denoising-step index (a 1000-step PNDM schedule) to the
// DDPM timestep: t = 1001 − step for step ≥ 2; step 1 gives 999.
func StepToT(step int) (int, error) {
	switch {
	case step == 1:
		return 999, nil
	case step >= 2 && step <= 1000:
		return 1001 - step, nil
	}
	return 0, fmt.Errorf("--step %d is outside 1..1000 (the reference's step index; t = 1001 − step)", step)
}

// TToStep is the reference step index for a DDPM timestep, the inverse of StepToT: 1001 − t
// for t in 1..998, and 2 for t = 999 (steps 1 and 2 both give 999; 2 follows the rule). No
// step gives t = 0 (nor a t outside 0..999): TToStep returns 0 then, which callers show as
// "none", as they do for models without timesteps.
func TToStep(t int) int {
	switch {
	case t >= 1 && t <= 998:
		return 1001 - t
	case t == 999:
		return 2
	}
	return 0
}

// Noise returns n standard-normal values from a seeded generator. The same (seed, n) always
// gives the same values, so both images of a pair get the same noise.
func Noise(seed int64, n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// AddNoise applies the DDPM forward process z_t = √ᾱ_t·z_0 + √(1−ᾱ_t)·ε in place.
func AddNoise(z, eps []float32, t int) {
	ab := AlphasCumprod()[t]
	a, s := float32(math.Sqrt(ab)), float32(math.Sqrt(1-ab))
	for i := range z {
		z[i] = a*z[i] + s*eps[i]
	}
}
