package engine

import (
	"fmt"
	"strings"
)

// ElemType is a tensor element type, numbered as ONNX's TensorProto.DataType.
type ElemType int32

// The element types the engine moves in and out.
const (
	Float32 ElemType = 1
	Int32   ElemType = 6
	Int64   ElemType = 7
	Float16 ElemType = 10
)

// MarshalText writes the type's name, for JSON.
func (e ElemType) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

func (e ElemType) String() string {
	switch e {
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Float16:
		return "float16"
	}
	if e == 0 {
		return "unknown"
	}
	return fmt.Sprintf("type%d", int32(e))
}

// Tensor is a named dense tensor held in Go memory. Exactly one data slice is set, matching
// Type; Float16 holds IEEE binary16 bit patterns.
type Tensor struct {
	Name    string
	Shape   []int64
	Type    ElemType
	Float32 []float32
	Float16 []uint16
	Int64   []int64
	Int32   []int32
}

// F32 makes a float32 tensor.
func F32(name string, shape []int64, data []float32) Tensor {
	return Tensor{Name: name, Shape: shape, Type: Float32, Float32: data}
}

// I64 makes an int64 tensor.
func I64(name string, shape []int64, data []int64) Tensor {
	return Tensor{Name: name, Shape: shape, Type: Int64, Int64: data}
}

// Len is the number of elements the shape holds.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= int(d)
	}
	return n
}

func (t Tensor) dataLen() int {
	switch t.Type {
	case Float32:
		return len(t.Float32)
	case Float16:
		return len(t.Float16)
	case Int64:
		return len(t.Int64)
	case Int32:
		return len(t.Int32)
	}
	return -1
}

func (t Tensor) validate() error {
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("input %q: negative dimension in shape %v", t.Name, t.Shape)
		}
	}
	if n := t.dataLen(); n < 0 {
		return fmt.Errorf("input %q: unsupported element type %v", t.Name, t.Type)
	} else if n != t.Len() {
		return fmt.Errorf("input %q: %d values for shape %v (%d expected)", t.Name, n, t.Shape, t.Len())
	}
	return nil
}

// IOInfo describes a graph input or output: its name, element type and shape, where a
// dimension of -1 is symbolic (Dims holds its name).
type IOInfo struct {
	Name  string   `json:"name"`
	Type  ElemType `json:"type"`
	Shape []int64  `json:"shape"`
	Dims  []string `json:"dims,omitempty"`
}

// Rank is the number of dimensions; -1 when the graph does not say.
func (i IOInfo) Rank() int {
	if i.Shape == nil {
		return -1
	}
	return len(i.Shape)
}

func (i IOInfo) String() string {
	dims := make([]string, len(i.Shape))
	for k, d := range i.Shape {
		if d < 0 {
			dims[k] = i.Dims[k]
			if dims[k] == "" {
				dims[k] = "?"
			}
			continue
		}
		dims[k] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s %v [%s]", i.Name, i.Type, strings.Join(dims, ","))
}
