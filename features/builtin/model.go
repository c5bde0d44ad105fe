package builtin

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/features/tapped"
)

// DefaultSize is the working size the built-in model uses unless told otherwise.
const DefaultSize = 256

// DefaultT is the timestep the explorer opens on: the reference's style setting (step 900).
const DefaultT = 101

// Model is the built-in model, loaded and ready.
type Model struct {
	size   int
	layers []features.Layer
	graph  *tapped.Model
}

// Open builds the graph for size and loads it through the attention finder, like any model.
func Open(rt features.Loader, size int) (*Model, error) {
	if size == 0 {
		size = DefaultSize
	}
	g, err := Graph(size)
	if err != nil {
		return nil, err
	}
	data, err := onnx.Marshal(g)
	if err != nil {
		return nil, err
	}
	tm, err := tapped.Load(rt, "built-in model", data, "", tapped.Options{Extra: []string{OutputEmbed}})
	if err != nil {
		return nil, err
	}
	layers, err := withGrids(tm.Describe(0, 0))
	if err != nil {
		return nil, errors.Join(err, tm.Close())
	}
	return &Model{size: size, layers: layers, graph: tm}, nil
}

// withGrids checks that the attention finder sees the layers the built-in model defines and
// returns what it found (the tapped tensors included) with the grids the model defines.
func withGrids(found []features.Layer) ([]features.Layer, error) {
	want := Layers()
	if len(found) != len(want) {
		return nil, fmt.Errorf("built-in model: the attention finder saw %d layers, the model has %d", len(found), len(want))
	}
	for i := range want {
		f, w := found[i], want[i]
		if f.Name != w.Name || f.Heads != w.Heads || f.HeadDim != w.HeadDim || f.Scale != w.Scale || f.Kind != w.Kind {
			return nil, fmt.Errorf("built-in model: the attention finder saw %v, the model defines %v", f, w)
		}
		found[i].Tokens, found[i].GridH, found[i].GridW, found[i].Prefix = w.Tokens, w.GridH, w.GridW, w.Prefix
	}
	return found, nil
}

// Info implements features.Model.
func (m *Model) Info() features.ModelInfo {
	return features.ModelInfo{
		Name: "builtin", Family: "builtin", Description: Description,
		Layers: m.layers, DefaultLayer: DefaultLayer, Timesteps: true, DefaultT: DefaultT, Size: m.size,
	}
}

// Extract implements features.Model.
func (m *Model) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	if len(imgs) == 0 {
		return nil, errors.New("built-in model: no images")
	}
	if t < 0 || t >= schedule.Timesteps {
		return nil, fmt.Errorf("timestep %d is outside 0..%d", t, schedule.Timesteps-1)
	}
	n, plane := len(imgs), 3*m.size*m.size
	px := make([]float32, 0, n*plane)
	for _, img := range imgs {
		px = append(px, features.CHW(features.ResizeSquare(img, m.size), features.HalfMean, features.HalfStd)...)
	}
	eps := schedule.Noise(seed, plane)
	noise := make([]float32, 0, n*plane)
	ts := make([]int64, n)
	for i := range imgs {
		noise = append(noise, eps...)
		ts[i] = int64(t)
	}
	shape := []int64{int64(n), 3, int64(m.size), int64(m.size)}
	out, err := m.graph.Run(ctx, m.size, m.size, engine.F32(InputImage, shape, px), engine.I64(InputTimestep, []int64{int64(n)}, ts), engine.F32(InputNoise, shape, noise))
	if err != nil {
		return nil, err
	}
	res := make([]features.Extraction, n)
	for i := range res {
		res[i].Layers = out.Features[i]
		res[i].Global = batchItem(out.Extra[OutputEmbed], i)
	}
	return res, nil
}

// batchItem is item i of a tensor whose first dimension is the batch.
func batchItem(t engine.Tensor, i int) []float32 {
	per := len(t.Float32) / int(t.Shape[0])
	return t.Float32[i*per : (i+1)*per]
}

// Close implements features.Model.
func (m *Model) Close() error { return m.graph.Close() }
