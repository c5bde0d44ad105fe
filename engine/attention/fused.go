package attention

import (
	"fmt"
	"math"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// fusedName names a fused attention node: its own scope when it has one, else the scope of
// the projection feeding its query (an optimiser keeps the projection's name:
// "/…/attn1/to_q/MatMul" → "…attn1").
func (ix *graph) fusedName(n *onnxpb.NodeProto, q projected) string {
	if s := ix.scope(n); s != "" {
		return s
	}
	if s := ix.scope(ix.producer[q.tensor]); s != "" {
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			return s[:i] // drop the projection's own module (to_q, q_proj, query)
		}
	}
	return ix.nameFromNorm(q.source)
}

// nameFromNorm names a fused layer after the normalisation that feeds it, when its
// projections were merged into unnamed nodes: the norm's block, and in a diffusers
// transformer block norm1 → attn1, norm2 → attn2.
func (ix *graph) nameFromNorm(x string) string {
	s := ix.scope(ix.producer[ix.throughCasts(x)])
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return ""
	}
	block, norm := s[:i], s[i+1:]
	if strings.Contains(block, "transformer_blocks.") && (norm == "norm1" || norm == "norm2") {
		return block + ".attn" + norm[len(norm)-1:]
	}
	return block
}

// lenientUp walks from a fused operator's input to its projection for the source and the
// width; a tensor without a recognisable projection is its own source.
func (ix *graph) lenientUp(v string) projected {
	p, err := ix.projectionUp(v, false)
	if err != nil {
		return projected{tensor: v, source: ix.throughCasts(v), channels: lastDim(ix.staticDims(v))}
	}
	return p
}

// multiHead handles com.microsoft.MultiHeadAttention: query, key, value (inputs 0-2) and an
// optional packed bias (input 3). Packed QKV puts [B, S, H, 3, D] on input 0; packed KV puts
// [B, L, H, 2, D] on input 1.
func (ix *graph) multiHead(n *onnxpb.NodeProto) (*Layer, error) {
	heads := int(attrInt(n, "num_heads", 0))
	if heads <= 0 {
		return nil, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: "num_heads attribute missing"}
	}
	qIn, kIn, vIn, bias := input(n, 0), input(n, 1), input(n, 2), input(n, 3)
	l := &Layer{Softmax: n.GetName(), Op: "com.microsoft.MultiHeadAttention", Heads: heads, Kind: Self}
	pl := &plan{out: tap{src: output(n, 0)}}
	var q, k projected
	var dim int
	switch {
	case kIn == "": // packed QKV
		q = ix.lenientUp(qIn)
		k = q
		dim = ix.packedDim(qIn, 3, heads, q.channels)
		pl.q = tap{src: qIn, packed: 3, packedIndex: 0}
		pl.k = tap{src: qIn, packed: 3, packedIndex: 1}
		pl.v = tap{src: qIn, packed: 3, packedIndex: 2}
	case vIn == "": // packed KV
		q = ix.lenientUp(qIn)
		k = ix.lenientUp(kIn)
		if q.channels > 0 {
			dim = q.channels / heads
		} else {
			dim = ix.packedDim(kIn, 2, heads, k.channels)
		}
		pl.q = tap{src: qIn}
		pl.k = tap{src: kIn, packed: 2, packedIndex: 0}
		pl.v = tap{src: kIn, packed: 2, packedIndex: 1}
	default:
		q = ix.lenientUp(qIn)
		k = ix.lenientUp(kIn)
		c := q.channels
		if c == 0 && bias != "" {
			if d := ix.weightDims(bias); len(d) == 1 && d[0]%3 == 0 {
				c = int(d[0] / 3)
			}
		}
		if c > 0 {
			dim = c / heads
		}
		pl.q, pl.k, pl.v = tap{src: qIn}, tap{src: kIn}, tap{src: vIn}
		if bias != "" && c == 0 {
			return nil, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: "a packed bias of unknown width: cannot split it into Q, K and V"}
		}
		if bias != "" {
			pl.q.bias, pl.q.biasOffset, pl.q.biasSize = bias, 0, int64(c)
			pl.k.bias, pl.k.biasOffset, pl.k.biasSize = bias, int64(c), int64(c)
			pl.v.bias, pl.v.biasOffset, pl.v.biasSize = bias, int64(2*c), int64(c)
		}
	}
	if dim <= 0 {
		return nil, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: "cannot tell the head size: no projection weights or static shape on the query"}
	}
	l.HeadDim = dim
	l.Scale = attrFloat(n, "scale", 0)
	if l.Scale == 0 {
		l.Scale = 1 / math.Sqrt(float64(dim))
	}
	l.QSource, l.KVSource = q.source, k.source
	if kIn != "" && q.source != k.source {
		l.Kind = Cross
	}
	l.Name = ix.fusedName(n, q)
	l.plan = pl
	return l, nil
}

// packedDim reads D from the Reshape to [B, S, H, n, D] that packs the projections, or from
// the packed projection's width n·H·D.
func (ix *graph) packedDim(v string, n, heads, channels int) int {
	if p := ix.producer[v]; isOp(p, "Reshape") {
		if k := ix.evalConst(input(p, 1)); k != nil && len(k.vals) == 5 && k.known[4] && k.vals[4] > 0 {
			return int(k.vals[4])
		}
		if channels == 0 {
			channels = ix.lenientUp(input(p, 0)).channels
		}
	}
	if d := ix.staticDims(v); len(d) == 5 && d[4] > 0 {
		return int(d[4])
	}
	if channels > 0 && channels%(n*heads) == 0 {
		return channels / (n * heads)
	}
	return 0
}

// msAttention handles com.microsoft.Attention: one input, merged weights [in, 3C] (or the
// widths of qkv_hidden_sizes) and a merged bias. Q, K and V never exist as tensors, so the
// plan computes them again from slices of the weights.
func (ix *graph) msAttention(n *onnxpb.NodeProto) (*Layer, error) {
	heads := int(attrInt(n, "num_heads", 0))
	x, w, bias := input(n, 0), input(n, 1), input(n, 2)
	dims := ix.weightDims(w)
	if heads <= 0 || len(dims) != 2 {
		return nil, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: "num_heads missing or weights not a 2-D constant"}
	}
	sizes := []int64{dims[1] / 3, dims[1] / 3, dims[1] / 3}
	if a := onnx.Attr(n, "qkv_hidden_sizes"); a != nil && len(a.GetInts()) == 3 {
		sizes = a.GetInts()
	}
	if sizes[0] <= 0 || sizes[0]%int64(heads) != 0 {
		return nil, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: fmt.Sprintf("weights %v do not split into 3 × %d heads", dims, heads)}
	}
	l := &Layer{Softmax: n.GetName(), Op: "com.microsoft.Attention", Heads: heads, HeadDim: int(sizes[0]) / heads, Kind: Self}
	l.Scale = attrFloat(n, "scale", 0)
	if l.Scale == 0 {
		l.Scale = 1 / math.Sqrt(float64(l.HeadDim))
	}
	src := ix.throughCasts(x)
	l.QSource, l.KVSource = src, src
	taps := make([]tap, 3)
	var off int64
	for i := range taps {
		taps[i] = tap{src: x, weight: w, weightOffset: off, weightSize: sizes[i]}
		if bias != "" {
			taps[i].bias, taps[i].biasOffset, taps[i].biasSize = bias, off, sizes[i]
		}
		off += sizes[i]
	}
	if sizes[1] != sizes[0] {
		l.KVHeads = int(sizes[1]) / l.HeadDim
	}
	l.plan = &plan{q: taps[0], k: taps[1], v: taps[2], out: tap{src: output(n, 0)}}
	l.Name = ix.scope(n)
	if l.Name == "" {
		l.Name = ix.nameFromNorm(x)
	}
	return l, nil
}

// onnxAttention handles the standard Attention operator (opset 23): Q, K, V as [B, S, C] with
// q_num_heads/kv_num_heads, or as [B, H, S, D].
func (ix *graph) onnxAttention(n *onnxpb.NodeProto) (*Layer, error) {
	qIn, kIn, vIn := input(n, 0), input(n, 1), input(n, 2)
	l := &Layer{Softmax: n.GetName(), Op: "Attention", Kind: Self}
	pl := &plan{}
	var q, k projected
	if qh := int(attrInt(n, "q_num_heads", 0)); qh > 0 {
		q, k = ix.lenientUp(qIn), ix.lenientUp(kIn)
		l.Heads = qh
		l.KVHeads = int(attrInt(n, "kv_num_heads", int64(qh)))
		if q.channels > 0 {
			l.HeadDim = q.channels / qh
		}
		pl.q, pl.k, pl.v = tap{src: qIn}, tap{src: kIn}, tap{src: vIn}
		pl.out = tap{src: output(n, 0)}
	} else {
		var err error
		if q, err = ix.projectionUp(qIn, false); err != nil {
			return nil, err
		}
		if k, err = ix.projectionUp(kIn, false); err != nil {
			return nil, err
		}
		v, err := ix.projectionUp(vIn, false)
		if err != nil {
			return nil, err
		}
		l.Heads, l.HeadDim = ix.heads(q, k, v)
		if kh, kd := ix.heads(k, v, q); kd == l.HeadDim && kh > 0 {
			l.KVHeads = kh
		}
		pl.q, pl.k, pl.v = tap{src: q.tensor}, tap{src: k.tensor}, tap{src: v.tensor}
		if out := ix.outputDown(output(n, 0)); out != "" {
			pl.out = tap{src: out}
		} else {
			pl.out = tap{src: output(n, 0), bhsd: true}
		}
	}
	if l.Heads <= 0 || l.HeadDim <= 0 {
		return nil, &WalkError{Node: n.GetName(), Op: n.GetOpType(), Reason: "cannot tell the head count and size"}
	}
	l.Scale = attrFloat(n, "scale", 0)
	if l.Scale == 0 {
		l.Scale = 1 / math.Sqrt(float64(l.HeadDim))
	}
	l.QSource, l.KVSource = q.source, k.source
	if q.source != k.source {
		l.Kind = Cross
	}
	l.Name = ix.fusedName(n, q)
	l.plan = pl
	return l, nil
}
