package builtin

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
)

// DefaultSize is the working size the built-in model uses unless told otherwise.
const DefaultSize = 256

// DefaultT is the timestep the explorer opens on: the reference's style setting (step 900).
const DefaultT = 101

// Loader opens a model from bytes; *engine.Runtime is one.
type Loader interface {
	Load(model []byte, so engine.SessionOptions) (*engine.Session, error)
}

// Model is the built-in model, loaded and ready.
type Model struct {
	size   int
	layers []features.Layer
	sess   *engine.Session
	taps   []string // q, k, v per layer, then the embedding
}

// Open builds the graph for size and loads it.
func Open(rt Loader, size int) (*Model, error) {
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
	var taps []string
	for _, lv := range Levels {
		q, k, v := Taps(lv.Name)
		taps = append(taps, q, k, v)
	}
	sess, err := rt.Load(onnx.AppendOutputs(data, taps), engine.SessionOptions{Outputs: append(taps, OutputEmbed)})
	if err != nil {
		return nil, fmt.Errorf("built-in model: %w", err)
	}
	return &Model{size: size, layers: Layers(), sess: sess, taps: taps}, nil
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
	if t < 0 || t >= features.Timesteps {
		return nil, fmt.Errorf("timestep %d is outside 0..%d", t, features.Timesteps-1)
	}
	n, plane := len(imgs), 3*m.size*m.size
	px := make([]float32, 0, n*plane)
	for _, img := range imgs {
		px = append(px, features.CHW(features.ResizeSquare(img, m.size), features.HalfMean, features.HalfStd)...)
	}
	eps := features.Noise(seed, plane)
	noise := make([]float32, 0, n*plane)
	ts := make([]int64, n)
	for i := range imgs {
		noise = append(noise, eps...)
		ts[i] = int64(t)
	}
	shape := []int64{int64(n), 3, int64(m.size), int64(m.size)}
	out, err := m.sess.Run(ctx, engine.F32(InputImage, shape, px), engine.I64(InputTimestep, []int64{int64(n)}, ts), engine.F32(InputNoise, shape, noise))
	if err != nil {
		return nil, err
	}
	res := make([]features.Extraction, n)
	for i := range res {
		for li, l := range m.layers {
			q, k, v := out[3*li], out[3*li+1], out[3*li+2]
			res[i].Layers = append(res[i].Layers, features.Features{
				Q: batchItem(q, i), K: batchItem(k, i), V: batchItem(v, i),
				Tokens: int(q.Shape[1]), Heads: l.Heads, HeadDim: l.HeadDim, Scale: l.Scale,
			})
		}
		res[i].Global = batchItem(out[len(out)-1], i)
	}
	return res, nil
}

// batchItem is item i of a tensor whose first dimension is the batch.
func batchItem(t engine.Tensor, i int) []float32 {
	per := len(t.Float32) / int(t.Shape[0])
	return t.Float32[i*per : (i+1)*per]
}

// Close implements features.Model.
func (m *Model) Close() error { return m.sess.Close() }
