// Package diffusion is the DiffSim-S model family: a Stable Diffusion U-Net in the
// diffusers/optimum ONNX layout (model_index.json, unet/, vae_encoder/, text_encoder/).
//
// One extraction: resize to the working size → RGB in [−1, 1] → VAE encoder (the latent mean,
// so encoding is deterministic) → × scaling factor → DDPM noise at t with SD's scaled_linear
// schedule and one noise tensor per (seed, shape) shared by every image → one U-Net forward
// at t, the whole batch at once, with the unconditional (empty-prompt) text embedding; every
// attention layer is tapped in that forward.
package diffusion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/tapped"
)

// Defaults of the family.
const (
	DefaultSize    = 512
	DefaultT       = 501 // NIGHTS' reference setting (step 500)
	ScalingFactor  = 0.18215
	bosToken       = 49406
	eosToken       = 49407
	contextLength  = 77
	latentChannels = 4
)

// IsFolder reports whether dir looks like a diffusers ONNX export.
func IsFolder(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "unet", "model.onnx"))
	return err == nil
}

// Model is a loaded diffusion model.
type Model struct {
	name    string
	size    int
	unet    *tapped.Model
	vae     *engine.Session
	vaeOut  string
	vaeHalf bool // the VAE output is mean ‖ log-variance: take the first half of the channels
	scaling float32
	text    engine.Tensor // [1, 77, D] unconditional embedding
	layers  []features.Layer
	def     int
	inputs  []engine.IOInfo

	mu      sync.Mutex
	latents map[image.Image][]float32 // VAE means per image (the images a session holds)
}

// Open loads the U-Net, the VAE encoder and the text encoder of the folder dir, and computes
// the empty prompt's embedding once.
func Open(ctx context.Context, l features.Loader, name, dir string, size int) (*Model, error) {
	if size == 0 {
		size = DefaultSize
	}
	if size%64 != 0 || size < 64 || size > 2048 {
		return nil, fmt.Errorf("--size %d: a Stable Diffusion U-Net needs a multiple of 64 between 64 and 2048", size)
	}
	m := &Model{name: name, size: size, scaling: ScalingFactor, latents: map[image.Image][]float32{}}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	var err error
	unetPath := filepath.Join(dir, "unet", "model.onnx")
	if m.unet, err = tapped.Open(l, unetPath, nil); err != nil {
		return nil, fmt.Errorf("U-Net: %w", err)
	}
	m.inputs = m.unet.Inputs()
	for _, in := range m.inputs {
		switch in.Name {
		case "sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids":
		default:
			return nil, fmt.Errorf("%s: U-Net input %q is not one diffsim can fill (it fills sample, timestep, encoder_hidden_states, text_embeds, time_ids)", unetPath, in.Name)
		}
	}
	if err := m.openVAE(l, filepath.Join(dir, "vae_encoder")); err != nil {
		return nil, err
	}
	if m.needs("encoder_hidden_states") {
		if err := m.embedEmptyPrompt(ctx, l, filepath.Join(dir, "text_encoder", "model.onnx")); err != nil {
			return nil, err
		}
	}
	m.layers = m.unet.Describe()
	SetGrids(m.layers, size)
	for i := range m.layers {
		if m.layers[i].Short == "Up0" {
			m.def = i
		}
	}
	ok = true
	return m, nil
}

func (m *Model) needs(input string) bool {
	for _, in := range m.inputs {
		if in.Name == input {
			return true
		}
	}
	return false
}

func (m *Model) openVAE(l features.Loader, dir string) error {
	path := filepath.Join(dir, "model.onnx")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("VAE encoder: %w", err)
	}
	g, err := onnx.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	mean, err := attention.TapVAEMean(g)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case mean.Tensor != "":
		m.vaeOut = mean.Tensor
		data = onnx.AppendOutputs(data, []string{mean.Tensor})
	case mean.Parameters != "":
		m.vaeOut, m.vaeHalf = mean.Parameters, true
	}
	if cfg, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var c struct {
			ScalingFactor float32 `json:"scaling_factor"`
		}
		if json.Unmarshal(cfg, &c) == nil && c.ScalingFactor > 0 {
			m.scaling = c.ScalingFactor
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if m.vae, err = l.Load(data, engine.SessionOptions{ExternalDataDir: abs, Outputs: []string{m.vaeOut}}); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(m.vae.Inputs()) != 1 {
		return fmt.Errorf("%s: the VAE encoder has %d inputs; diffsim feeds one image", path, len(m.vae.Inputs()))
	}
	return nil
}

// embedEmptyPrompt runs the text encoder once on the empty prompt: BOS, EOS, then EOS as
// padding to 77 tokens (SD 1.x).
func (m *Model) embedEmptyPrompt(ctx context.Context, l features.Loader, path string) error {
	sess, err := openFile(l, path, []string{"last_hidden_state"})
	if err != nil {
		return fmt.Errorf("text encoder (needed for the U-Net's encoder_hidden_states): %w", err)
	}
	defer sess.Close()
	ids := make([]int64, contextLength)
	ids[0] = bosToken
	for i := 1; i < len(ids); i++ {
		ids[i] = eosToken
	}
	ins := sess.Inputs()
	if len(ins) != 1 {
		return fmt.Errorf("%s: the text encoder has %d inputs; diffsim feeds only input_ids", path, len(ins))
	}
	in := engine.I64(ins[0].Name, []int64{1, contextLength}, ids)
	if ins[0].Type == engine.Int32 {
		i32 := make([]int32, len(ids))
		for i, v := range ids {
			i32[i] = int32(v)
		}
		in = engine.Tensor{Name: ins[0].Name, Shape: in.Shape, Type: engine.Int32, Int32: i32}
	}
	out, err := sess.Run(ctx, in)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m.text = out[0]
	return nil
}

func openFile(l features.Loader, path string, outputs []string) (*engine.Session, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return l.Load(data, engine.SessionOptions{ExternalDataDir: abs, Outputs: outputs})
}

// Info implements features.Model.
func (m *Model) Info() features.ModelInfo {
	return features.ModelInfo{
		Name: m.name, Family: "diffusion",
		Description: "Stable Diffusion U-Net (DiffSim-S): VAE latent mean, shared DDPM noise, unconditional text embedding",
		Layers:      m.layers, DefaultLayer: m.def, Timesteps: true, DefaultT: DefaultT, Size: m.size,
	}
}

// Extract implements features.Model.
func (m *Model) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	if t < 0 || t >= features.Timesteps {
		return nil, fmt.Errorf("timestep %d is outside 0..%d", t, features.Timesteps-1)
	}
	n, h := len(imgs), m.size/8
	per := latentChannels * h * h
	latents := make([]float32, 0, n*per)
	for _, img := range imgs {
		z, err := m.encode(ctx, img)
		if err != nil {
			return nil, err
		}
		latents = append(latents, z...)
	}
	eps := features.Noise(seed, per)
	for i := 0; i < n; i++ {
		features.AddNoise(latents[i*per:(i+1)*per], eps, t)
	}
	inputs := []engine.Tensor{engine.F32("sample", []int64{int64(n), latentChannels, int64(h), int64(h)}, latents)}
	for _, in := range m.inputs {
		switch in.Name {
		case "timestep":
			ts, err := timestepTensor(in, n, t)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, ts)
		case "encoder_hidden_states":
			d := m.text.Shape[len(m.text.Shape)-1]
			rep := make([]float32, 0, n*len(m.text.Float32))
			for i := 0; i < n; i++ {
				rep = append(rep, m.text.Float32...)
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(n), m.text.Shape[1], d}, rep))
		case "text_embeds": // SDXL: the unconditional pooled embedding is zero
			d := int64(1280)
			if len(in.Shape) == 2 && in.Shape[1] > 0 {
				d = in.Shape[1]
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(n), d}, make([]float32, int64(n)*d)))
		case "time_ids": // SDXL: original size, crop top-left, target size
			ids := make([]float32, 0, 6*n)
			s := float32(m.size)
			for i := 0; i < n; i++ {
				ids = append(ids, s, s, 0, 0, s, s)
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(n), 6}, ids))
		}
	}
	res, err := m.unet.Run(ctx, h, h, inputs...)
	if err != nil {
		return nil, fmt.Errorf("U-Net: %w", err)
	}
	out := make([]features.Extraction, n)
	for i := range out {
		out[i].Layers = res.Features[i]
	}
	return out, nil
}

// encode returns the scaled VAE latent mean of one image, cached per image.
func (m *Model) encode(ctx context.Context, img image.Image) ([]float32, error) {
	m.mu.Lock()
	z, ok := m.latents[img]
	m.mu.Unlock()
	if ok {
		return append([]float32(nil), z...), nil
	}
	px := features.CHW(features.ResizeSquare(img, m.size), features.HalfMean, features.HalfStd)
	out, err := m.vae.Run(ctx, engine.F32(m.vae.Inputs()[0].Name, []int64{1, 3, int64(m.size), int64(m.size)}, px))
	if err != nil {
		return nil, fmt.Errorf("VAE encoder: %w", err)
	}
	lat := out[0]
	if len(lat.Shape) != 4 {
		return nil, fmt.Errorf("VAE encoder: output %q has shape %v, want [1, C, H, W]", m.vaeOut, lat.Shape)
	}
	c := int(lat.Shape[1])
	if m.vaeHalf {
		c /= 2
	}
	if c != latentChannels {
		return nil, fmt.Errorf("VAE encoder: %d latent channels, want %d", c, latentChannels)
	}
	hw := int(lat.Shape[2] * lat.Shape[3])
	z = make([]float32, c*hw)
	for i := range z {
		z[i] = lat.Float32[i] * m.scaling
	}
	m.mu.Lock()
	if len(m.latents) > 64 {
		clear(m.latents)
	}
	m.latents[img] = z
	m.mu.Unlock()
	return append([]float32(nil), z...), nil
}

// timestepTensor builds t in the type and rank the U-Net declares.
func timestepTensor(in engine.IOInfo, n, t int) (engine.Tensor, error) {
	shape := []int64{int64(n)}
	if in.Rank() == 0 {
		shape = []int64{}
		n = 1
	}
	switch in.Type {
	case engine.Int64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(t)
		}
		return engine.I64(in.Name, shape, v), nil
	case engine.Float32, 0:
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(t)
		}
		return engine.F32(in.Name, shape, v), nil
	case engine.Float16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = onnx.FloatToHalf(float32(t))
		}
		return engine.Tensor{Name: in.Name, Shape: shape, Type: engine.Float16, Float16: v}, nil
	}
	return engine.Tensor{}, fmt.Errorf("U-Net input timestep has type %v; diffsim fills int64, float32 or float16", in.Type)
}

// SetGrids fills in the token grid of each U-Net layer at a working size, from its module
// path (the U-Net halves the latent at each level down and doubles it on the way up).
func SetGrids(layers []features.Layer, size int) {
	latent := size / 8
	levels := countBlocks(layers, "down_blocks")
	for i := range layers {
		if g := gridFromPath(layers[i].Name, latent, levels); g > 0 {
			layers[i].GridH, layers[i].GridW, layers[i].Tokens = g, g, g*g
		}
	}
}

var blockIndex = regexp.MustCompile(`^(down_blocks|up_blocks)\.(\d+)\.|^(mid_block)\.`)

func countBlocks(layers []features.Layer, group string) int {
	n := 0
	for _, l := range layers {
		if m := blockIndex.FindStringSubmatch(l.Name); m != nil && m[1] == group {
			i, _ := strconv.Atoi(m[2])
			n = max(n, i+1)
		}
	}
	// SD's last down block has no attention; the U-Net still downsamples into it.
	return n + 1
}

// gridFromPath is the token grid side of a diffusers U-Net layer at latent side `latent`:
// down_blocks.i works at latent/2^i, the mid block at the deepest level, up_blocks.j mirrors
// the down path. 0 when the path says nothing.
func gridFromPath(name string, latent, levels int) int {
	m := blockIndex.FindStringSubmatch(name)
	if m == nil {
		return 0
	}
	var depth int
	switch {
	case m[3] == "mid_block":
		depth = levels - 1
	case m[1] == "down_blocks":
		depth, _ = strconv.Atoi(m[2])
	default:
		j, _ := strconv.Atoi(m[2])
		depth = levels - 1 - j
	}
	if depth < 0 {
		return 0
	}
	return latent >> depth
}

// Close frees the sessions; it is idempotent.
func (m *Model) Close() error {
	var errs []error
	if m.unet != nil {
		errs = append(errs, m.unet.Close())
		m.unet = nil
	}
	if m.vae != nil {
		errs = append(errs, m.vae.Close())
		m.vae = nil
	}
	return errors.Join(errs...)
}
