package attention

import (
	"testing"

	"github.com/diffsim/diffsim/engine/onnx"
)

func TestGrid(t *testing.T) {
	for _, c := range []struct {
		tokens, h, w   int
		gh, gw, prefix int
	}{
		{4096, 64, 64, 64, 64, 0},
		{1024, 64, 64, 32, 32, 0},
		{64, 64, 64, 8, 8, 0},
		{197, 224, 224, 14, 14, 1},
		{257, 224, 224, 16, 16, 1},
		{261, 224, 224, 16, 16, 5},
		{50, 224, 224, 7, 7, 1},
		{6144, 64, 96, 64, 96, 0},      // 512×768 px
		{96 * 64, 768, 512, 96, 64, 0}, // portrait
		{1370, 518, 518, 37, 37, 1},
		{0, 64, 64, 0, 0, 0},
	} {
		gh, gw, p := Grid(c.tokens, c.h, c.w)
		if gh != c.gh || gw != c.gw || p != c.prefix {
			t.Errorf("Grid(%d, %d, %d) = %d×%d+%d, want %d×%d+%d", c.tokens, c.h, c.w, gh, gw, p, c.gh, c.gw, c.prefix)
		}
	}
}

func TestUNetPlace(t *testing.T) {
	for _, c := range []struct{ name, group, short string }{
		{"down_blocks.0.attentions.1.transformer_blocks.0.attn1", "down", "Down0"},
		{"down_blocks.2.attentions.1.transformer_blocks.0.attn2", "down", "Down2.x"},
		{"down_blocks.0.attentions.0.transformer_blocks.0.attn1", "down", ""},
		{"mid_block.attentions.0.transformer_blocks.0.attn1", "mid", "Mid"},
		{"up_blocks.1.attentions.2.transformer_blocks.0.attn1", "up", "Up0"},
		{"up_blocks.3.attentions.2.transformer_blocks.0.attn2", "up", "Up2.x"},
		{"up_blocks.1.attentions.1.transformer_blocks.0.attn1", "up", ""},
		{"input_blocks.5.1.transformer_blocks.0.attn1", "down", "Down1"},
		{"output_blocks.11.1.transformer_blocks.0.attn2", "up", "Up2.x"},
		{"middle_block.1.transformer_blocks.0.attn1", "mid", "Mid"},
		{"encoder.mid_block.attentions.0", "", ""},
		{"vision_model.encoder.layers.0.self_attn", "", ""},
	} {
		g, s := unetPlace(c.name)
		if g != c.group || s != c.short {
			t.Errorf("unetPlace(%s) = %q %q, want %q %q", c.name, g, s, c.group, c.short)
		}
	}
}

func TestScopeFromMetadata(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"['', 'blocks.2', 'blocks.2.attn', 'softmax']", "blocks.2.attn"},
		{"['', 'down_blocks.0', 'down_blocks.0.attentions.0', 'down_blocks.0.attentions.0.transformer_blocks.0', 'down_blocks.0.attentions.0.transformer_blocks.0.attn1', 'matmul_3']", "down_blocks.0.attentions.0.transformer_blocks.0.attn1"},
		{"['', 'softmax']", ""},
		{"['', 'encoder', 'layer', 'softmax']", "encoder.layer"},
		{"not a list", ""},
		{"[]", ""},
	} {
		if got := scopeFromMetadata(c.in); got != c.want {
			t.Errorf("scopeFromMetadata(%s) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := stripWrappers("unet.down_blocks.0.attentions.0"); got != "down_blocks.0.attentions.0" {
		t.Errorf("stripWrappers: %q", got)
	}
	if got := stripWrappers("model.diffusion_model.input_blocks.1.1"); got != "input_blocks.1.1" {
		t.Errorf("stripWrappers: %q", got)
	}
}

// TestEvalConst evaluates a head-split shape built from run-time sizes and constants, and the
// live SDPA scale with a known head size.
func TestEvalConst(t *testing.T) {
	b := onnx.NewBuilder("eval")
	x := b.Input("x", onnx.Float, -1, -1, 64)
	sh := b.Node("Shape", "/Shape", []string{x})
	b0 := b.Node("Gather", "/Gather", []string{sh, b.Initializer(onnx.IntTensor("i0", nil, []int64{0}))})
	c := b.Node("Gather", "/Gather_1", []string{sh, b.Initializer(onnx.IntTensor("i2", nil, []int64{2}))})
	d := b.Node("Div", "/Div", []string{c, b.Initializer(onnx.IntTensor("h", nil, []int64{8}))})
	un := func(v, name string) string {
		return b.Node("Unsqueeze", name, []string{v, b.Ints("ax"+name, []int64{1}, []int64{0})})
	}
	shape := b.Node("Concat", "/Concat", []string{un(b0, "/U0"), b.Ints("m1", []int64{1}, []int64{-1}), b.Ints("h8", []int64{1}, []int64{8}), un(d, "/U1")}, onnx.AttrInt("axis", 0))
	sl := b.Node("Slice", "/Slice", []string{sh, b.Ints("s", []int64{1}, []int64{-1}), b.Ints("e", []int64{1}, []int64{1 << 40})})
	f := b.Node("Cast", "/Cast", []string{sl}, onnx.AttrInt("to", int64(onnx.Float)))
	inv := b.Node("Div", "/Div_1", []string{b.Scalar("one", 1), b.Node("Sqrt", "/Sqrt", []string{f})})
	sq := b.Node("Sqrt", "/Sqrt_1", []string{inv})
	ix := newGraph(b.Model())
	k := ix.evalConst(shape)
	// x declares its width (64), so C/8 is known; the batch is not.
	if k == nil || len(k.vals) != 4 || k.known[0] || !k.known[1] || k.vals[1] != -1 || k.vals[2] != 8 || !k.known[3] || k.vals[3] != 8 {
		t.Fatalf("shape = %+v, want [?, -1, 8, 8]", k)
	}
	if !ix.isShapeDerived(sq, 0) {
		t.Fatal("the live scale is not recognised as computed from shapes")
	}
	v, ok := ix.evalWithHeadSize(sq, 64).scalar()
	if !ok || v < 0.35355 || v > 0.35356 {
		t.Fatalf("live scale with D=64 = %v %v, want 64^-1/4 = 0.35355", v, ok)
	}
}
