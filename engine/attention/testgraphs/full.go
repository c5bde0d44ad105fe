package testgraphs

import (
	"fmt"

	"github.com/diffsim/diffsim/engine/onnx"
)

// resnets completes a block's resnets when UNetOptions.Full is set: resnets.0's second
// convolution, then n−1 more resnets of two 3×3 convolutions each, with their residual adds.
// (Up blocks of the real U-Net read the skip connection's concatenation, which is wider; the
// parameter count here is a little below SD 1.5's for that reason.)
func (u *unet) resnets(blk, h string, c, n int) string {
	if !u.o.Full {
		return h
	}
	for r := range n {
		s := u.at(fmt.Sprintf("%s/resnets.%d", blk, r))
		x := h
		if r > 0 {
			h = u.conv(s.sub("conv1"), h, c, c, 3, 1)
		}
		h = s.node("Sigmoid", []string{h}) // a cheap stand-in for GroupNorm + SiLU between the convolutions
		h = u.conv(s.sub("conv2"), h, c, c, 3, 1)
		h = s.node("Add", []string{x, h})
	}
	return h
}

// feedForward is a BasicTransformerBlock's GEGLU feed-forward when UNetOptions.Full is set:
// norm3 → Linear(c, 8c) split in two halves → a · GELU(b) → Linear(4c, c) → residual add.
func (u *unet) feedForward(blk scope, h string, c int) string {
	if !u.o.Full {
		return h
	}
	norm := blk.sub("norm3").layerNorm(h, c)
	ff := blk.sub("ff")
	proj, _, _ := ff.sub("net.0/proj").linear(norm, c, 8*c, true)
	halves := ff.nodeIn("", "Split", []string{proj, u.ints(int64(4*c), int64(4*c))}, 2, onnx.AttrInt("axis", -1))
	gate := ff.node("Mul", []string{halves[1], ff.node("Sigmoid", []string{ff.node("Mul", []string{halves[1], u.scalar(1.702)})})})
	out, _, _ := ff.sub("net.2").linear(ff.node("Mul", []string{halves[0], gate}), 4*c, c, true)
	return blk.node("Add", []string{out, h})
}
