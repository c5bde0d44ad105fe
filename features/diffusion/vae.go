package diffusion

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// VAEMean says how to read a VAE encoder's latent deterministically.
type VAEMean struct {
	// Tensor is the mean to tap as an extra output when the graph samples its latent inside
	// (RandomNormal or RandomNormalLike). "" otherwise.
	Tensor string
	// Sampled reports that the graph's latent output is a random sample.
	Sampled bool
	// Parameters names a graph output holding mean ‖ log-variance on axis 1 (the mean is its
	// first half); "" when there is none.
	Parameters string
}

// TapVAEMean finds how to read a VAE encoder's latent mean.
//
// A graph that samples inside computes mean + std·noise. The rule that holds however the
// exporter arranged the mean (straight from a Split or Slice of the moments, scaled, cast,
// reshaped): the mean is the input of the sampling Add that does not depend on the noise.
// The sampling Add is the first Add downstream of RandomNormal(Like) with exactly one input
// that depends on the noise. A graph whose output is latent_parameters (or moments) says so
// instead.
func TapVAEMean(m *onnxpb.ModelProto) (VAEMean, error) {
	var res VAEMean
	g := m.GetGraph()
	if g == nil {
		return res, errors.New("VAE encoder: the model has no graph")
	}
	for _, o := range g.GetOutput() {
		if strings.Contains(o.GetName(), "latent_parameters") || strings.Contains(o.GetName(), "moments") {
			res.Parameters = o.GetName()
		}
	}
	noisy := map[string]bool{} // tensors that depend on the noise
	var sources []string
	for _, n := range g.GetNode() {
		if n.GetDomain() == "" || n.GetDomain() == "ai.onnx" {
			if op := n.GetOpType(); op == "RandomNormalLike" || op == "RandomNormal" {
				for _, o := range n.GetOutput() {
					noisy[o] = true
				}
				sources = append(sources, n.GetName())
			}
		}
	}
	if len(sources) == 0 {
		if res.Parameters == "" {
			return res, errors.New("VAE encoder: neither an in-graph sample (RandomNormalLike) nor a latent_parameters output; export the encoder with diffusers/optimum")
		}
		return res, nil
	}
	res.Sampled = true
	// Nodes are stored in topological order (the ONNX spec requires it), so one pass
	// propagates the noise. The pass also stops at the first sampling Add, which comes before
	// anything that reads the sample.
	for _, n := range g.GetNode() {
		var in []bool
		dep := false
		for _, x := range n.GetInput() {
			in = append(in, noisy[x])
			dep = dep || noisy[x]
		}
		if !dep {
			continue
		}
		if n.GetOpType() == "Add" && len(in) == 2 && in[0] != in[1] {
			mean := n.GetInput()[0]
			if in[0] {
				mean = n.GetInput()[1]
			}
			if !produced(g, mean) {
				return res, fmt.Errorf("VAE encoder: the sampling Add %q reads %q, which nothing in the graph computes; the file is damaged", n.GetName(), mean)
			}
			res.Tensor = mean
			return res, nil
		}
		for _, o := range n.GetOutput() {
			noisy[o] = true
		}
	}
	return res, fmt.Errorf("VAE encoder: the noise of %s is never added to a mean (no Add with one noise-free input downstream of it); diffsim cannot read the latent mean", sources[0])
}

// produced reports whether a tensor is computed by a node or given as an input or initializer.
func produced(g *onnxpb.GraphProto, name string) bool {
	if name == "" {
		return false
	}
	for _, n := range g.GetNode() {
		if slices.Contains(n.GetOutput(), name) {
			return true
		}
	}
	for _, in := range g.GetInput() {
		if in.GetName() == name {
			return true
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return true
		}
	}
	return false
}
