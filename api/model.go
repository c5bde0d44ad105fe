package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/schedule"
)

// Kind says where a layer's keys and values come from.
type Kind string

// Layer kinds.
const (
	SelfAttention  Kind = "self"
	CrossAttention Kind = "cross"
)

// Layer describes one attention layer of a model at its working size: what `models inspect`
// prints, what scores are taken at, what the explorer lists. The graph-side layer (which
// tensors to tap, and how) stays below, in features; this is what crosses to every front end.
type Layer struct {
	Index int    // position in the model's layer list
	Name  string // module path, e.g. up_blocks.1.attentions.2.transformer_blocks.0.attn1
	Short string // the DiffSim paper's name for SD 1.x U-Net layers (Down0 … Up2); else ""
	Group string // down, mid or up for U-Nets; "" otherwise
	Kind  Kind
	// ImageKV reports that keys and values carry image information: self-attention, or
	// cross-attention on an image prompt. Cross-attention on text scores 1 for every pair.
	ImageKV bool

	Tokens int // tokens at the model's working size; 0 when the family cannot tell
	GridH  int // spatial token grid; 0 when the layout has none
	GridW  int
	Prefix int // leading non-spatial tokens (CLS, registers), kept in scores, dropped in maps

	Heads   int
	KVHeads int // key/value heads; equal to Heads except for grouped-query attention
	HeadDim int
	Scale   float64 // effective softmax scale
	Op      string  // "MatMul+Softmax" for unfused layers, else the fused operator

	// Q, K, V and Out name the graph tensors tapped for the layer.
	Q, K, V, Out string
}

// Channels is Heads × HeadDim.
func (l Layer) Channels() int { return l.Heads * l.HeadDim }

// Grouped reports grouped-query attention: fewer key/value heads than query heads.
func (l Layer) Grouped() bool { return l.KVHeads > 0 && l.KVHeads != l.Heads }

// Label is the name shown to people: the short name first when there is one.
func (l Layer) Label() string {
	if l.Short != "" {
		return l.Short + " " + l.Name
	}
	return l.Name
}

// Abbrev is a compact name for tables, figures and narrow columns: the paper's short name with
// the module's last part (Up0 attn1), or the module path with the common parts shortened
// (down1.0.0.attn1, L3).
func (l Layer) Abbrev() string {
	if l.Short != "" {
		suffix := ""
		if i := strings.LastIndex(l.Name, "."); i >= 0 {
			suffix = " " + l.Name[i+1:]
		}
		return l.Short + suffix
	}
	return abbrevReplacer.Replace(l.Name)
}

var abbrevReplacer = strings.NewReplacer("down_blocks.", "down", "up_blocks.", "up", "mid_block.", "mid.",
	".attentions.", ".", "attentions.", "", ".transformer_blocks.", ".", "encoder.layers.", "L", "encoder.layer.", "L",
	".self_attn", "", ".attention", "")

// MeaninglessText is why a cross-attention layer on text scores every pair 1: the one wording
// of it, in records, tables, the explorer and the server's answers.
const MeaninglessText = "cross-attention on text: keys and values do not depend on the image, so every pair scores 1"

// Meaningless says why scores at l carry no image information; "" when they do.
func (l Layer) Meaningless() string {
	if l.ImageKV {
		return ""
	}
	return MeaninglessText
}

// layerJSON is the layer as `models inspect --json` prints it.
type layerJSON struct {
	Index    int     `json:"index"`
	Name     string  `json:"name"`
	Short    string  `json:"short,omitempty"`
	Group    string  `json:"group,omitempty"`
	Kind     string  `json:"kind"`
	ImageKV  bool    `json:"image_kv"`
	GridH    int     `json:"grid_h,omitempty"`
	GridW    int     `json:"grid_w,omitempty"`
	Tokens   int     `json:"tokens,omitempty"`
	Prefix   int     `json:"prefix,omitempty"`
	Channels int     `json:"channels"`
	Heads    int     `json:"heads"`
	KVHeads  int     `json:"kv_heads,omitempty"`
	HeadDim  int     `json:"head_dim"`
	Scale    float64 `json:"scale"`
	Op       string  `json:"op,omitempty"`
	Tensors  struct {
		Q   string `json:"q"`
		K   string `json:"k"`
		V   string `json:"v"`
		Out string `json:"out,omitempty"`
	} `json:"tensors"`
}

// MarshalJSON writes the layer in the documented `models inspect --json` form.
func (l Layer) MarshalJSON() ([]byte, error) {
	j := layerJSON{
		Index: l.Index, Name: l.Name, Short: l.Short, Group: l.Group, Kind: string(l.Kind), ImageKV: l.ImageKV,
		GridH: l.GridH, GridW: l.GridW, Tokens: l.Tokens, Prefix: l.Prefix,
		Channels: l.Channels(), Heads: l.Heads, HeadDim: l.HeadDim, Scale: l.Scale, Op: l.Op,
	}
	if l.Grouped() {
		j.KVHeads = l.KVHeads
	}
	j.Tensors.Q, j.Tensors.K, j.Tensors.V, j.Tensors.Out = l.Q, l.K, l.V, l.Out
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes, so a layer list survives the server's API.
func (l *Layer) UnmarshalJSON(b []byte) error {
	var j layerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Layer{
		Index: j.Index, Name: j.Name, Short: j.Short, Group: j.Group, Kind: Kind(j.Kind), ImageKV: j.ImageKV,
		Tokens: j.Tokens, GridH: j.GridH, GridW: j.GridW, Prefix: j.Prefix,
		Heads: j.Heads, KVHeads: j.KVHeads, HeadDim: j.HeadDim, Scale: j.Scale, Op: j.Op,
		Q: j.Tensors.Q, K: j.Tensors.K, V: j.Tensors.V, Out: j.Tensors.Out,
	}
	if l.KVHeads == 0 {
		l.KVHeads = l.Heads
	}
	return nil
}

// Capabilities say what a scorer can do beyond scoring, so that front ends ask it rather than
// naming model families or probing for optional methods.
type Capabilities struct {
	// Prompt: the model is conditioned on a text prompt (--prompt), and CFG: it can run the
	// classifier-free-guidance layout (--cfg). Diffusion U-Nets do; image encoders do not.
	Prompt bool `json:"prompt"`
	CFG    bool `json:"cfg"`
	// PromptFixed says why the prompt cannot change while the scorer is open (a served model
	// is loaded with one, shared by every client); "" when SetConditioning may switch it.
	PromptFixed string `json:"prompt_fixed,omitempty"`
	// Served: the work runs in another process (diffsim serve), whose counters and memory are
	// shared with its other clients.
	Served bool `json:"served"`
	// Progress: network runs report their progress (session.Options.OnProgress).
	Progress bool `json:"progress"`
}

// ModelInfo describes a loaded model and how it runs: what the family says it is, and the
// device and seed it runs with. /v1/info answers with it as it is.
type ModelInfo struct {
	Name         string       `json:"name"`   // "builtin", a pulled name, or a path
	Family       string       `json:"family"` // builtin, diffusion, vit, generic: for people and listings, never for decisions (Caps)
	Description  string       `json:"description"`
	Device       string       `json:"device"`
	Notice       string       `json:"notice,omitempty"` // why the device is not the one asked for
	Layers       []Layer      `json:"layers"`
	DefaultLayer int          `json:"default_layer"`
	Timesteps    bool         `json:"timesteps"` // whether t means anything for this model
	DefaultT     int          `json:"default_t"`
	Size         int          `json:"size"` // working size in pixels
	Seed         int64        `json:"seed"`
	Caps         Capabilities `json:"capabilities"`
	// Baseline calibrates the model's scores against unrelated pairs of images (diffsim
	// baseline build; session/baseline finds it by the model's content and settings): every
	// record made with this info carries its rescaled score and percentile. Nil without one.
	// It is found where the scorer runs its caller (a served model's client finds its own),
	// so it is not part of /v1/info.
	Baseline *calibration.Baseline `json:"-"`
}

// Selection is where in a model a score is taken, as a person or a request names it: a layer
// by index, name or short name, a timestep as t or as the reference's step index, and a
// metric. Empty fields mean the model's defaults.
type Selection struct {
	Layer  string `json:"layer,omitempty"`  // index, name or short name; "" = the model's default
	T      *int   `json:"t,omitempty"`      // DDPM timestep; nil = the model's default
	Step   int    `json:"step,omitempty"`   // the reference code's step index instead of t (t = 1001 − step)
	Metric Metric `json:"metric,omitempty"` // aas (default), cos, mse
}

// Target is a Selection resolved against a model: what a Request takes.
type Target struct {
	Layer  int    // index into ModelInfo.Layers
	T      int    // 0 for models without timesteps
	Metric Metric // never ""
}

// Resolve is the one resolution of a selection: the layer by ResolveLayer, t from t or step
// (0 for a model without timesteps, which ignores both), the metric by name. Errors are
// ErrUsage.
func (info ModelInfo) Resolve(sel Selection) (Target, error) {
	var tg Target
	var err error
	if tg.Metric, err = ParseMetric(string(sel.Metric)); err != nil {
		return tg, err
	}
	if tg.Layer, err = info.ResolveLayer(sel.Layer); err != nil {
		return tg, err
	}
	if tg.T, err = info.timestep(sel.T, sel.Step); err != nil {
		return tg, err
	}
	return tg, nil
}

func (info ModelInfo) timestep(t *int, step int) (int, error) {
	switch {
	case step != 0 && t != nil:
		return 0, usagef("give t or step, not both")
	case step != 0:
		v, err := schedule.StepToT(step)
		if err != nil {
			return 0, UsageError(err)
		}
		if !info.Timesteps {
			return 0, nil
		}
		return v, nil
	case t == nil:
		if !info.Timesteps {
			return 0, nil
		}
		return info.DefaultT, nil
	case *t < 0 || *t >= schedule.Timesteps:
		return 0, usagef("t=%d is outside 0..%d", *t, schedule.Timesteps-1)
	case !info.Timesteps:
		return 0, nil
	}
	return *t, nil
}

// ResolveLayer finds a layer by index, full name, the paper's short name (Up0, Down1, …;
// case-insensitive), or a unique name prefix or suffix. Empty means the model's default layer.
func (info ModelInfo) ResolveLayer(arg string) (int, error) {
	layers := info.Layers
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return info.DefaultLayer, nil
	}
	names := func() string {
		ns := make([]string, 0, len(layers))
		for i, l := range layers {
			ns = append(ns, fmt.Sprintf("%d %s", i, l.Label()))
		}
		return strings.Join(ns, ", ")
	}
	if i, err := strconv.Atoi(arg); err == nil {
		if i < 0 || i >= len(layers) {
			return 0, usagef("--layer %d is outside 0..%d (layers: %s)", i, len(layers)-1, names())
		}
		return i, nil
	}
	for i, l := range layers {
		if l.Name == arg {
			return i, nil
		}
	}
	for i, l := range layers {
		if l.Short != "" && strings.EqualFold(l.Short, arg) {
			return i, nil
		}
	}
	var matches []int
	for i, l := range layers {
		if strings.HasSuffix(l.Name, arg) || strings.HasPrefix(l.Name, arg) {
			matches = append(matches, i)
		}
	}
	if len(matches) == 1 {
		return matches[0], nil
	}
	if len(matches) > 1 {
		return 0, usagef("--layer %q matches %d layers; be more specific (layers: %s)", arg, len(matches), names())
	}
	return 0, usagef("no layer %q (layers: %s)", arg, names())
}

// CheckLayer reports a layer index outside the model's list.
func (info ModelInfo) CheckLayer(layer int) error {
	if n := len(info.Layers); layer < 0 || layer >= n {
		return usagef("layer %d is outside 0..%d", layer, n-1)
	}
	return nil
}
