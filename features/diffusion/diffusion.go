// Package diffusion is the DiffSim-S model family: a Stable Diffusion U-Net in the
// diffusers/optimum ONNX layout (model_index.json, unet/, vae_encoder/, text_encoder/).
//
// One extraction: resize to the working size → RGB in [−1, 1] → VAE encoder (the latent mean,
// so encoding is deterministic) → × scaling factor → DDPM noise at t with SD's scaled_linear
// schedule and one noise tensor per (seed, shape) shared by every image → one U-Net forward
// at t, the whole batch at once, with a text embedding: the unconditional (empty-prompt) one
// by default, or a prompt's, or both halves of classifier-free guidance (Conditioning); every
// attention layer is tapped in that forward.
package diffusion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/ipadapter"
	"github.com/diffsim/diffsim/features/schedule"
	"github.com/diffsim/diffsim/features/tapped"
	"github.com/diffsim/diffsim/features/tokenizer"
)

// Defaults of the family.
const (
	DefaultSize    = 512
	DefaultT       = 501 // NIGHTS' reference setting (step 500)
	ScalingFactor  = 0.18215
	latentChannels = 4
	maxPrompts     = 64 // text embeddings kept (77 × 768 floats each for SD 1.x)
)

// How a features.Conditioning enters the U-Net.
//
// With CFG the U-Net runs the reference code's classifier-free-guidance batch: every image
// twice, once with the unconditional embedding and once with the prompt's. An image's
// features at a layer then hold both halves side by side as heads: heads 0…H−1 are the
// unconditional half's, heads H…2H−1 the prompted half's, token by token. Attention is per
// head, so each half of A attends only to the same half of B, exactly as the reference's
// batched scaled_dot_product_attention over its [2, heads, tokens, dim] tensors, and the
// flattened cosine covers both halves at once, as the reference's does. The guidance scale
// only mixes the two noise predictions after the forward; it does not touch the features, so
// there is none to set.

func checkSize(size int) error {
	if size%64 != 0 || size < 64 || size > 2048 {
		return fmt.Errorf("--size %d: a Stable Diffusion U-Net needs a multiple of 64 between 64 and 2048", size)
	}
	return nil
}

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
	scaling float32
	layers  []features.Layer
	def     int
	inputs  []engine.IOInfo
	loader  features.Loader

	// The VAE encoder and the text encoder run once per image and per prompt, whatever t:
	// their results are kept (latents, embeds), and their sessions open only when a result is
	// missing, so a command on images and a prompt seen before never loads them.
	vaeMu   sync.Mutex // held while the VAE session opens
	vaePath string
	vae     engine.Runner
	vaeOut  string
	vaeHalf bool // the VAE output is mean ‖ log-variance: take the first half of the channels
	latents *memo

	textMu   sync.Mutex // held while a prompt is embedded, so one prompt runs the encoder once
	textEnc  engine.Runner
	textPath string
	tok      *tokenizer.Tokenizer // nil when the folder has no tokenizer/
	tokErr   error                // why tok is nil
	embeds   *memo                // [1, 77, D] per prompt's token ids
	ip       *ipadapter.Adapter   // DiffSim-C when set
	textRuns int                  // text encoder runs, for tests
	vaeRuns  int                  // VAE encoder runs, for tests
}

// memoDir is where results that do not depend on t are kept between processes:
// $DIFFSIM_MEMO/kind when set ("off" keeps nothing), else kind under diffsim's cache folder.
func memoDir(kind string) string {
	switch d := os.Getenv("DIFFSIM_MEMO"); d {
	case "off":
		return ""
	case "":
		return filepath.Join(engine.CacheDir(), kind)
	default:
		return filepath.Join(d, kind)
	}
}

// Open loads the U-Net, the VAE encoder, the text encoder and the tokenizer of the folder dir,
// and computes the empty prompt's embedding once. Prompts are embedded when first asked for.
func Open(ctx context.Context, l features.Loader, name, dir string, size int) (*Model, error) {
	return OpenWithAdapter(ctx, l, name, dir, size, nil)
}

// OpenWithAdapter is Open with an IP-Adapter injected into every cross-attention layer
// (DiffSim-C); ip may be nil. The model owns ip from then on and closes it.
func OpenWithAdapter(ctx context.Context, l features.Loader, name, dir string, size int, ip *ipadapter.Adapter) (*Model, error) {
	m := &Model{name: name, size: size, scaling: ScalingFactor, ip: ip, loader: l}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	var err error
	unetPath := filepath.Join(dir, "unet", "model.onnx")
	var inj ipadapter.Injection
	// The taps' shapes are inferred at the size scoring runs: the graph's own when its input
	// is fixed, else the one asked for.
	to := tapped.Options{Inputs: func(declared []engine.IOInfo, batch int) map[string][]int64 {
		size, err := WorkingSize(declared, size)
		if err != nil {
			return nil
		}
		return UNetInputs(declared, size, batch)
	}}
	if ip != nil {
		data, wdir, injected, err := ip.InjectUNet(unetPath)
		if err != nil {
			return nil, fmt.Errorf("IP-Adapter: %w", err)
		}
		inj = injected
		// Sessions open when a run needs them: the injected graph is rebuilt then rather than
		// kept in memory.
		to.Source = func() ([]byte, error) {
			data, _, _, err := ip.InjectUNet(unetPath)
			return data, err
		}
		if m.unet, err = tapped.Load(l, unetPath, data, wdir, to); err != nil {
			return nil, fmt.Errorf("U-Net with IP-Adapter: %w", err)
		}
	} else if m.unet, err = tapped.Open(l, unetPath, to); err != nil {
		return nil, fmt.Errorf("U-Net: %w", err)
	}
	m.inputs = m.unet.Inputs()
	if m.size, err = WorkingSize(m.inputs, size); err != nil {
		return nil, fmt.Errorf("%s: %w", unetPath, err)
	}
	for _, in := range m.inputs {
		switch in.Name {
		case "sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids", ipadapter.TokensInput:
		default:
			return nil, fmt.Errorf("%s: U-Net input %q is not one diffsim can fill (it fills sample, timestep, encoder_hidden_states, text_embeds, time_ids)", unetPath, in.Name)
		}
	}
	if err := m.openVAE(filepath.Join(dir, "vae_encoder")); err != nil {
		return nil, err
	}
	if m.needs("encoder_hidden_states") {
		if err := m.openText(ctx, dir); err != nil {
			return nil, err
		}
	}
	m.layers = m.unet.Describe(m.size/8, m.size/8)
	for i := range m.layers {
		if m.layers[i].Short == "Up0" {
			m.def = i
		}
	}
	if ip != nil {
		// DiffSim-C: the IP layers (attn2's Q over the IP tokens' K and V) are the point.
		m.def = inj.Describe(m.layers)
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

// openVAE finds the VAE encoder and its scaling factor; its session opens when a latent is
// first missing (vaeSession).
func (m *Model) openVAE(dir string) error {
	m.vaePath = filepath.Join(dir, "model.onnx")
	if _, err := os.Stat(m.vaePath); err != nil {
		return fmt.Errorf("VAE encoder: %w", err)
	}
	if cfg, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var c struct {
			ScalingFactor float32 `json:"scaling_factor"`
		}
		if json.Unmarshal(cfg, &c) == nil && c.ScalingFactor > 0 {
			m.scaling = c.ScalingFactor
		}
	}
	m.latents = newMemo(memoDir("latents"), graphIdentity(m.vaePath, m.scaling, m.size), 64)
	return nil
}

// vaeSession opens the VAE encoder's session, once, with its latent mean exposed.
func (m *Model) vaeSession() (engine.Runner, error) {
	m.vaeMu.Lock()
	defer m.vaeMu.Unlock()
	if m.vae != nil {
		return m.vae, nil
	}
	path := m.vaePath
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("VAE encoder: %w", err)
	}
	g, err := onnx.ParseStructure(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	mean, err := TapVAEMean(g)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g = nil
	switch {
	case mean.Tensor != "":
		m.vaeOut = mean.Tensor
		data = onnx.AppendOutputs(data, []string{mean.Tensor})
	case mean.Parameters != "":
		m.vaeOut, m.vaeHalf = mean.Parameters, true
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	size := int64(len(data))
	vae, err := m.loader.Load(data, engine.SessionOptions{ExternalDataDir: abs, Outputs: []string{m.vaeOut}})
	data = nil
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	engine.ReleaseMemory(size)
	if len(vae.Inputs()) != 1 {
		return nil, errors.Join(fmt.Errorf("%s: the VAE encoder has %d inputs; diffsim feeds one image", path, len(vae.Inputs())), vae.Close())
	}
	m.vae = vae
	return vae, nil
}

// openText finds the text encoder, loads the tokenizer and embeds the empty prompt (from the
// memo when a run before kept it: the text encoder's session then does not open). Without a
// tokenizer/ folder the empty prompt is SD 1.x's ids (BOS, then EOS as padding) and other
// prompts are refused when asked for.
func (m *Model) openText(ctx context.Context, dir string) error {
	m.textPath = filepath.Join(dir, "text_encoder", "model.onnx")
	if _, err := os.Stat(m.textPath); err != nil {
		return fmt.Errorf("text encoder (needed for the U-Net's encoder_hidden_states): %w", err)
	}
	m.embeds = newMemo(memoDir("text"), graphIdentity(m.textPath, "last_hidden_state"), maxPrompts)
	m.tok, m.tokErr = tokenizer.Load(filepath.Join(dir, "tokenizer"))
	if m.tokErr != nil && !errors.Is(m.tokErr, fs.ErrNotExist) {
		return m.tokErr
	}
	_, err := m.embedding(ctx, "")
	return err
}

// textSession opens the text encoder's session, once; the caller holds textMu.
func (m *Model) textSession() (engine.Runner, error) {
	if m.textEnc != nil {
		return m.textEnc, nil
	}
	data, err := os.ReadFile(m.textPath)
	if err != nil {
		return nil, fmt.Errorf("text encoder (needed for the U-Net's encoder_hidden_states): %w", err)
	}
	abs, err := filepath.Abs(filepath.Dir(m.textPath))
	if err != nil {
		return nil, err
	}
	size := int64(len(data))
	sess, err := m.loader.Load(data, engine.SessionOptions{ExternalDataDir: abs, Outputs: []string{"last_hidden_state"}})
	data = nil
	if err != nil {
		return nil, fmt.Errorf("text encoder %s: %w", m.textPath, err)
	}
	engine.ReleaseMemory(size)
	if ins := sess.Inputs(); len(ins) != 1 {
		return nil, errors.Join(fmt.Errorf("%s: the text encoder has %d inputs; diffsim feeds only input_ids", m.textPath, len(ins)), sess.Close())
	}
	m.textEnc = sess
	return sess, nil
}

// Prepare embeds the prompt c needs, so that a bad prompt or a folder without a tokenizer is
// reported before any image runs.
func (m *Model) Prepare(ctx context.Context, c features.Conditioning) error {
	if c.IsZero() {
		return nil
	}
	if m.textPath == "" {
		return fmt.Errorf("%s: the U-Net takes no text embedding, so a prompt cannot condition it", m.name)
	}
	if m.needs("text_embeds") {
		return fmt.Errorf("%s: prompts are supported for SD 1.x/2.x U-Nets; this one (SDXL) also needs the second text encoder's pooled embedding", m.name)
	}
	_, err := m.embedding(ctx, c.Prompt)
	return err
}

// TextEncoderRuns counts the text encoder's runs: one per distinct prompt while the prompt
// stays among the last maxPrompts.
func (m *Model) TextEncoderRuns() int {
	m.textMu.Lock()
	defer m.textMu.Unlock()
	return m.textRuns
}

// embedding returns a prompt's [1, 77, D] text embedding, running the text encoder once per
// prompt.
func (m *Model) embedding(ctx context.Context, prompt string) (engine.Tensor, error) {
	m.textMu.Lock()
	defer m.textMu.Unlock()
	var ids []int64
	switch {
	case m.tok != nil:
		ids = m.tok.Encode(prompt)
	case prompt == "":
		ids = make([]int64, tokenizer.ContextLength)
		ids[0] = tokenizer.BOS
		for i := 1; i < len(ids); i++ {
			ids[i] = tokenizer.EOS
		}
	default:
		return engine.Tensor{}, fmt.Errorf("prompt %q: %w", prompt, m.tokErr)
	}
	key := m.embeds.key(ids)
	if e, ok := m.embeds.get(key); ok && len(e.Shape) == 3 {
		return e, nil
	}
	enc, err := m.textSession()
	if err != nil {
		return engine.Tensor{}, err
	}
	in := enc.Inputs()[0]
	t := engine.I64(in.Name, []int64{1, int64(len(ids))}, ids)
	if in.Type == engine.Int32 {
		i32 := make([]int32, len(ids))
		for i, v := range ids {
			i32[i] = int32(v)
		}
		t = engine.Tensor{Name: in.Name, Shape: t.Shape, Type: engine.Int32, Int32: i32}
	}
	out, err := enc.Run(ctx, t)
	if err != nil {
		return engine.Tensor{}, fmt.Errorf("%s: %w", m.textPath, err)
	}
	m.textRuns++
	e := out[0]
	if len(e.Shape) != 3 || e.Shape[0] != 1 || len(e.Float32) == 0 {
		return engine.Tensor{}, fmt.Errorf("%s: last_hidden_state has shape %v, want [1, 77, D] float32", m.textPath, e.Shape)
	}
	m.embeds.put(key, e)
	return e, nil
}

// Info implements features.Model.
func (m *Model) Info() features.ModelInfo {
	desc := "Stable Diffusion U-Net (DiffSim-S): VAE latent mean, shared DDPM noise, unconditional text embedding unless a prompt is set"
	if m.ip != nil {
		desc = fmt.Sprintf("Stable Diffusion U-Net with IP-Adapter Plus at scale %.2g (DiffSim-C on the .ip layers): VAE latent mean, shared DDPM noise", m.ip.Scale())
	}
	return features.ModelInfo{
		Name: m.name, Family: "diffusion",
		Description: desc,
		Layers:      m.layers, DefaultLayer: m.def, Timesteps: true, DefaultT: DefaultT, Size: m.size,
	}
}

// Extract implements features.Model with the unconditional embedding.
func (m *Model) Extract(ctx context.Context, imgs []image.Image, t int, seed int64) ([]features.Extraction, error) {
	return m.ExtractConditioned(ctx, imgs, t, seed, features.Conditioning{})
}

// ExtractConditioned is Extract with the U-Net conditioned on c. With c.CFG the batch holds
// every image twice (unconditional half first, as diffusers orders it) and each image's
// features carry both halves as heads (see Conditioning).
func (m *Model) ExtractConditioned(ctx context.Context, imgs []image.Image, t int, seed int64, c features.Conditioning) ([]features.Extraction, error) {
	return m.extract(ctx, imgs, t, seed, c, nil)
}

// ExtractLayers implements features.Pruner: the U-Net cut down to the layers' taps (Down0
// needs a tenth of the network; the VAE latent and the text embedding are computed as for
// every run, once per image and per prompt).
func (m *Model) ExtractLayers(ctx context.Context, imgs []image.Image, t int, seed int64, c features.Conditioning, layers []int) ([]features.Extraction, error) {
	if layers == nil {
		return nil, errors.New("ExtractLayers: no layers asked for")
	}
	return m.extract(ctx, imgs, t, seed, c, layers)
}

// ReleasePruned implements features.Pruner.
func (m *Model) ReleasePruned() error { return m.unet.ReleasePruned() }

// extract runs the U-Net on imgs, whole (layers nil) or pruned to layers.
func (m *Model) extract(ctx context.Context, imgs []image.Image, t int, seed int64, c features.Conditioning, layers []int) ([]features.Extraction, error) {
	if t < 0 || t >= schedule.Timesteps {
		return nil, fmt.Errorf("timestep %d is outside 0..%d", t, schedule.Timesteps-1)
	}
	if err := m.Prepare(ctx, c); err != nil {
		return nil, err
	}
	var texts []engine.Tensor // one per half of the batch
	if m.textPath != "" {
		prompts := []string{c.Prompt}
		if c.CFG {
			prompts = []string{"", c.Prompt}
		}
		for _, p := range prompts {
			e, err := m.embedding(ctx, p)
			if err != nil {
				return nil, err
			}
			texts = append(texts, e)
		}
	}
	halves := max(len(texts), 1)
	n, h := len(imgs), m.size/8
	per := latentChannels * h * h
	latents := make([]float32, 0, halves*n*per)
	for _, img := range imgs {
		z, err := m.encode(ctx, img)
		if err != nil {
			return nil, err
		}
		latents = append(latents, z...)
	}
	eps := schedule.Noise(seed, per)
	for i := 0; i < n; i++ {
		schedule.AddNoise(latents[i*per:(i+1)*per], eps, t)
	}
	for k := 1; k < halves; k++ {
		latents = append(latents, latents[:n*per]...)
	}
	b := halves * n
	inputs := []engine.Tensor{engine.F32("sample", []int64{int64(b), latentChannels, int64(h), int64(h)}, latents)}
	for _, in := range m.inputs {
		switch in.Name {
		case "timestep":
			ts, err := timestepTensor(in, b, t)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, ts)
		case "encoder_hidden_states":
			shape := texts[0].Shape
			rep := make([]float32, 0, b*len(texts[0].Float32))
			for _, e := range texts {
				for i := 0; i < n; i++ {
					rep = append(rep, e.Float32...)
				}
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(b), shape[1], shape[2]}, rep))
		case "text_embeds": // SDXL: the unconditional pooled embedding is zero
			d := int64(1280)
			if len(in.Shape) == 2 && in.Shape[1] > 0 {
				d = in.Shape[1]
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(b), d}, make([]float32, int64(b)*d)))
		case ipadapter.TokensInput: // DiffSim-C: each image's own IP tokens, in batch order
			tok, err := m.ip.Tokens(ctx, imgs)
			if err != nil {
				return nil, fmt.Errorf("IP-Adapter: %w", err)
			}
			per := len(tok.Float32) / n
			rep := make([]float32, 0, b*per)
			for k := 0; k < halves; k++ {
				rep = append(rep, tok.Float32...)
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(b), tok.Shape[1], tok.Shape[2]}, rep))
		case "time_ids": // SDXL: original size, crop top-left, target size
			ids := make([]float32, 0, 6*b)
			s := float32(m.size)
			for i := 0; i < b; i++ {
				ids = append(ids, s, s, 0, 0, s, s)
			}
			inputs = append(inputs, engine.F32(in.Name, []int64{int64(b), 6}, ids))
		}
	}
	var res tapped.Result
	var err error
	if layers == nil {
		res, err = m.unet.Run(ctx, h, h, inputs...)
	} else {
		res, err = m.unet.RunLayers(ctx, layers, h, h, inputs...)
	}
	if err != nil {
		return nil, fmt.Errorf("U-Net: %w", err)
	}
	out := make([]features.Extraction, n)
	for i := range out {
		out[i].Layers = res.Features[i]
		if halves == 2 {
			out[i].Layers = make([]features.Features, len(res.Features[i]))
			for l := range out[i].Layers {
				out[i].Layers[l] = StackHalves(res.Features[i][l], res.Features[n+i][l])
			}
		}
	}
	return out, nil
}

// StackHalves puts the features of the two halves of a CFG batch side by side as heads: each
// token's row is the unconditional half's channels, then the prompted half's.
func StackHalves(uncond, prompted features.Features) features.Features {
	out := uncond
	out.Heads = uncond.Heads + prompted.Heads
	c := uncond.Channels()
	stack := func(a, b []float32, rows int) []float32 {
		s := make([]float32, 0, len(a)+len(b))
		for r := 0; r < rows; r++ {
			s = append(s, a[r*c:(r+1)*c]...)
			s = append(s, b[r*c:(r+1)*c]...)
		}
		return s
	}
	out.Q = stack(uncond.Q, prompted.Q, uncond.Tokens)
	out.K = stack(uncond.K, prompted.K, uncond.KV())
	out.V = stack(uncond.V, prompted.V, uncond.KV())
	return out
}

// encode returns the scaled VAE latent mean of one image: kept by the image's pixels at the
// working size and the VAE (memo), so the encoder runs once per image, in this process or an
// earlier one.
func (m *Model) encode(ctx context.Context, img image.Image) ([]float32, error) {
	px := features.CHW(features.ResizeSquare(img, m.size), features.HalfMean, features.HalfStd)
	key := m.latents.key(px)
	h := m.size / 8
	if z, ok := m.latents.get(key); ok && len(z.Float32) == latentChannels*h*h {
		return slices.Clone(z.Float32), nil
	}
	vae, err := m.vaeSession()
	if err != nil {
		return nil, err
	}
	out, err := vae.Run(ctx, engine.F32(vae.Inputs()[0].Name, []int64{1, 3, int64(m.size), int64(m.size)}, px))
	if err != nil {
		return nil, fmt.Errorf("VAE encoder: %w", err)
	}
	m.vaeMu.Lock()
	m.vaeRuns++
	m.vaeMu.Unlock()
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
	if hw != h*h {
		return nil, fmt.Errorf("VAE encoder: %d×%d latents for %d px images, want %d×%d", lat.Shape[2], lat.Shape[3], m.size, h, h)
	}
	z := make([]float32, c*hw)
	for i := range z {
		z[i] = lat.Float32[i] * m.scaling
	}
	m.latents.put(key, engine.F32("", []int64{int64(c), int64(h), int64(h)}, z))
	return slices.Clone(z), nil
}

// VAERuns counts the VAE encoder's runs: one per image not seen before.
func (m *Model) VAERuns() int {
	m.vaeMu.Lock()
	defer m.vaeMu.Unlock()
	return m.vaeRuns
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

// WorkingSize is the image size the U-Net runs at: the one its sample input fixes (8 pixels
// per latent), else asked, else DefaultSize. Asking for another size than a fixed input's is
// an error that says which size to use.
func WorkingSize(declared []engine.IOInfo, asked int) (int, error) {
	for _, in := range declared {
		if in.Name != "sample" || len(in.Shape) != 4 || in.Shape[2] <= 0 || in.Shape[3] <= 0 {
			continue
		}
		h, w := int(in.Shape[2]), int(in.Shape[3])
		if h != w {
			return 0, fmt.Errorf("the U-Net's input is fixed at %d×%d latents; diffsim runs square images and cannot feed it", h, w)
		}
		if asked != 0 && asked != 8*h {
			return 0, fmt.Errorf("--size %d: the U-Net's input is fixed at %d×%d latents, so it runs at %d px only; leave --size out or pass --size %d", asked, h, w, 8*h, 8*h)
		}
		return 8 * h, nil
	}
	if asked == 0 {
		asked = DefaultSize
	}
	return asked, checkSize(asked)
}

// UNetInputs are the shapes ExtractConditioned feeds the U-Net at a batch and working size,
// given its declared inputs: what the taps' shapes are inferred at. Sizes the family does not
// choose (the text embedding's width, the IP tokens) are the graph's own, unknown if it does
// not fix them.
func UNetInputs(declared []engine.IOInfo, size, batch int) map[string][]int64 {
	b, h := int64(batch), int64(size/8)
	dim := func(in engine.IOInfo, k int, def int64) int64 {
		if k < len(in.Shape) && in.Shape[k] > 0 {
			return in.Shape[k]
		}
		return def
	}
	out := map[string][]int64{}
	for _, in := range declared {
		switch in.Name {
		case "sample":
			out[in.Name] = []int64{b, latentChannels, h, h}
		case "timestep":
			out[in.Name] = []int64{b}
			if in.Rank() == 0 {
				out[in.Name] = []int64{}
			}
		case "encoder_hidden_states": // the tokenizer pads every prompt to its context length
			out[in.Name] = []int64{b, dim(in, 1, tokenizer.ContextLength), dim(in, 2, -1)}
		case "text_embeds":
			out[in.Name] = []int64{b, dim(in, 1, 1280)}
		case "time_ids":
			out[in.Name] = []int64{b, 6}
		default:
			s := []int64{b}
			for k := 1; k < len(in.Shape); k++ {
				s = append(s, dim(in, k, -1))
			}
			out[in.Name] = s
		}
	}
	return out
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
	if m.textEnc != nil {
		errs = append(errs, m.textEnc.Close())
		m.textEnc = nil
	}
	if m.ip != nil {
		errs = append(errs, m.ip.Close())
		m.ip = nil
	}
	return errors.Join(errs...)
}
