package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/diffsim/diffsim/engine/onnx"
)

// Tensor is one tensor to write: its bytes, little-endian, as DType stores them.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// Float32s makes an F32 tensor.
func Float32s(name string, shape []int64, vals []float32) Tensor {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: F32, Shape: shape, Data: raw}
}

// Float16s makes an F16 tensor, rounding each value to the nearest half.
func Float16s(name string, shape []int64, vals []float32) Tensor {
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(raw[2*i:], onnx.FloatToHalf(v))
	}
	return Tensor{Name: name, DType: F16, Shape: shape, Data: raw}
}

// BFloat16s makes a BF16 tensor, truncating each value's mantissa to 7 bits (round to nearest even).
func BFloat16s(name string, shape []int64, vals []float32) Tensor {
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		b := math.Float32bits(v)
		b += 0x7fff + (b>>16)&1
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(b>>16))
	}
	return Tensor{Name: name, DType: BF16, Shape: shape, Data: raw}
}

// Write writes tensors (in the order given) and metadata as a safetensors file. The header is
// padded with spaces to a multiple of 8 bytes, as the reference writer does.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		if _, dup := header[t.Name]; dup || t.Name == "" {
			return fmt.Errorf("safetensors: tensor name %q is empty or repeated", t.Name)
		}
		info := Info{Name: t.Name, DType: t.DType, Shape: t.Shape}
		if err := check(&info, []int64{off, off + int64(len(t.Data))}, math.MaxInt64); err != nil {
			return err
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	js, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, strings.Repeat(" ", pad)...)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}
