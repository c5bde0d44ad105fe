package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// Element types, as numbered by TensorProto.DataType.
const (
	Float   = int32(onnxpb.TensorProto_FLOAT)
	Int32   = int32(onnxpb.TensorProto_INT32)
	Int64   = int32(onnxpb.TensorProto_INT64)
	Float16 = int32(onnxpb.TensorProto_FLOAT16)
	Bool    = int32(onnxpb.TensorProto_BOOL)
	Double  = int32(onnxpb.TensorProto_DOUBLE)
)

// IsExternal reports whether the tensor's bytes live in a file beside the model.
func IsExternal(t *onnxpb.TensorProto) bool {
	return t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// NumElements is the product of the tensor's dimensions.
func NumElements(t *onnxpb.TensorProto) int64 {
	n := int64(1)
	for _, d := range t.GetDims() {
		n *= d
	}
	return n
}

// Floats decodes an inline float32 (or float16/double) tensor. External tensors are an error:
// their bytes are never loaded by this package.
func Floats(t *onnxpb.TensorProto) ([]float32, error) {
	if IsExternal(t) {
		return nil, fmt.Errorf("tensor %q: data is external; not loaded", t.GetName())
	}
	n := NumElements(t)
	if n < 0 || n > 1<<31 {
		return nil, fmt.Errorf("tensor %q: bad element count %d", t.GetName(), n)
	}
	switch t.GetDataType() {
	case Float:
		if raw := t.GetRawData(); raw != nil {
			if int64(len(raw)) != 4*n {
				return nil, fmt.Errorf("tensor %q: %d raw bytes for %d floats", t.GetName(), len(raw), n)
			}
			out := make([]float32, n)
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			return out, nil
		}
		if int64(len(t.GetFloatData())) != n {
			return nil, fmt.Errorf("tensor %q: %d floats for shape %v", t.GetName(), len(t.GetFloatData()), t.GetDims())
		}
		return append([]float32(nil), t.GetFloatData()...), nil
	case Float16:
		out := make([]float32, n)
		if raw := t.GetRawData(); raw != nil {
			if int64(len(raw)) != 2*n {
				return nil, fmt.Errorf("tensor %q: %d raw bytes for %d halves", t.GetName(), len(raw), n)
			}
			for i := range out {
				out[i] = HalfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			return out, nil
		}
		// float16 values are stored one per int32 when not raw.
		if int64(len(t.GetInt32Data())) != n {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", t.GetName(), len(t.GetInt32Data()), t.GetDims())
		}
		for i, v := range t.GetInt32Data() {
			out[i] = HalfToFloat(uint16(v))
		}
		return out, nil
	case Double:
		vals, err := doubles(t, n)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		for i, v := range vals {
			out[i] = float32(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: element type %d is not a float type", t.GetName(), t.GetDataType())
}

func doubles(t *onnxpb.TensorProto, n int64) ([]float64, error) {
	if raw := t.GetRawData(); raw != nil {
		if int64(len(raw)) != 8*n {
			return nil, fmt.Errorf("tensor %q: %d raw bytes for %d doubles", t.GetName(), len(raw), n)
		}
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	if int64(len(t.GetDoubleData())) != n {
		return nil, fmt.Errorf("tensor %q: %d doubles for shape %v", t.GetName(), len(t.GetDoubleData()), t.GetDims())
	}
	return t.GetDoubleData(), nil
}

// Ints decodes an inline int64 or int32 tensor.
func Ints(t *onnxpb.TensorProto) ([]int64, error) {
	if IsExternal(t) {
		return nil, fmt.Errorf("tensor %q: data is external; not loaded", t.GetName())
	}
	n := NumElements(t)
	if n < 0 || n > 1<<28 {
		return nil, fmt.Errorf("tensor %q: bad element count %d", t.GetName(), n)
	}
	switch t.GetDataType() {
	case Int64:
		if raw := t.GetRawData(); raw != nil {
			if int64(len(raw)) != 8*n {
				return nil, fmt.Errorf("tensor %q: %d raw bytes for %d int64s", t.GetName(), len(raw), n)
			}
			out := make([]int64, n)
			for i := range out {
				out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			return out, nil
		}
		if int64(len(t.GetInt64Data())) != n {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", t.GetName(), len(t.GetInt64Data()), t.GetDims())
		}
		return append([]int64(nil), t.GetInt64Data()...), nil
	case Int32:
		out := make([]int64, n)
		if raw := t.GetRawData(); raw != nil {
			if int64(len(raw)) != 4*n {
				return nil, fmt.Errorf("tensor %q: %d raw bytes for %d int32s", t.GetName(), len(raw), n)
			}
			for i := range out {
				out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
			return out, nil
		}
		if int64(len(t.GetInt32Data())) != n {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", t.GetName(), len(t.GetInt32Data()), t.GetDims())
		}
		for i, v := range t.GetInt32Data() {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: element type %d is not an integer type", t.GetName(), t.GetDataType())
}

// FloatTensor makes an inline float32 tensor stored as raw little-endian bytes.
func FloatTensor(name string, dims []int64, data []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: Float, RawData: raw}
}

// IntTensor makes an inline int64 tensor.
func IntTensor(name string, dims []int64, data []int64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: Int64, RawData: raw}
}

// HalfToFloat converts an IEEE 754 binary16 value to float32.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		frac &= 0x3ff
		return math.Float32frombits(sign | e<<23 | frac<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// FloatToHalf converts float32 to binary16, rounding to nearest even.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	frac := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		frac |= 0x800000
		shift := uint32(14 - exp)
		half := frac >> shift
		rem := frac & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(exp)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++
	}
	return sign | uint16(half)
}
