// Package safetensors reads and writes the safetensors weight format (Hugging Face): an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
// then the tensors' bytes back to back.
//
// A File reads only its header when opened; each tensor is read on request with one section
// read, so asking for a few tensors of a large file never loads the others.
package safetensors

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/diffsim/diffsim/engine/onnx"
)

// MaxHeader bounds the JSON header, as the reference implementation does (100 MB): a corrupt
// length must not make the reader allocate gigabytes.
const MaxHeader = 100 << 20

// DType is a tensor element type as the header spells it.
type DType string

// The element types of the format. Floats reads F64, F32, F16 and BF16.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
	F8E4 DType = "F8_E4M3"
	F8E5 DType = "F8_E5M2"
)

// Size is the width of one element in bytes; 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F64, I64, "U64":
		return 8
	case F32, I32, "U32":
		return 4
	case F16, BF16, I16, "U16":
		return 2
	case I8, U8, Bool, F8E4, F8E5:
		return 1
	}
	return 0
}

// ErrFormat is wrapped by every error about bytes that are not a valid safetensors file.
var ErrFormat = errors.New("not a valid safetensors file")

// Info describes one tensor of a file. Begin and End are byte offsets into the data section
// (after the header).
type Info struct {
	Name       string
	DType      DType
	Shape      []int64
	Begin, End int64
}

// Elements is the product of the shape (1 for a scalar).
func (i Info) Elements() int64 {
	n := int64(1)
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// Header is a parsed header: the tensors sorted by data offset, and the free-form metadata.
type Header struct {
	Tensors  []Info
	Metadata map[string]string
}

// ParseHeader decodes and checks a JSON header against a data section of dataSize bytes:
// every dtype known, every shape non-negative and not overflowing, every byte range inside
// the data section and exactly as long as its shape needs, and no two ranges overlapping.
func ParseHeader(header []byte, dataSize int64) (Header, error) {
	var h Header
	if len(header) > MaxHeader {
		return h, fmt.Errorf("%w: header of %d bytes is over the %d-byte limit", ErrFormat, len(header), MaxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return h, fmt.Errorf("%w: header is not a JSON object: %v", ErrFormat, err)
	}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &h.Metadata); err != nil {
				return h, fmt.Errorf("%w: __metadata__ is not an object of strings: %v", ErrFormat, err)
			}
			continue
		}
		var t struct {
			DType   DType   `json:"dtype"`
			Shape   []int64 `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &t); err != nil {
			return h, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		info := Info{Name: name, DType: t.DType, Shape: t.Shape}
		if err := check(&info, t.Offsets, dataSize); err != nil {
			return h, err
		}
		h.Tensors = append(h.Tensors, info)
	}
	slices.SortFunc(h.Tensors, func(a, b Info) int {
		return cmp.Or(cmp.Compare(a.Begin, b.Begin), cmp.Compare(a.End, b.End), cmp.Compare(a.Name, b.Name))
	})
	for i := 1; i < len(h.Tensors); i++ {
		if prev, cur := h.Tensors[i-1], h.Tensors[i]; cur.Begin < prev.End {
			return h, fmt.Errorf("%w: tensors %q and %q overlap", ErrFormat, prev.Name, cur.Name)
		}
	}
	return h, nil
}

func check(info *Info, offsets []int64, dataSize int64) error {
	size := info.DType.Size()
	if size == 0 {
		return fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, info.Name, info.DType)
	}
	if len(offsets) != 2 {
		return fmt.Errorf("%w: tensor %q: data_offsets has %d entries, want 2", ErrFormat, info.Name, len(offsets))
	}
	info.Begin, info.End = offsets[0], offsets[1]
	if info.Begin < 0 || info.End < info.Begin || info.End > dataSize {
		return fmt.Errorf("%w: tensor %q: bytes %d..%d outside the %d-byte data section", ErrFormat, info.Name, info.Begin, info.End, dataSize)
	}
	n := int64(size)
	for _, d := range info.Shape {
		if d < 0 {
			return fmt.Errorf("%w: tensor %q: negative dimension in shape %v", ErrFormat, info.Name, info.Shape)
		}
		if d > 0 && n > math.MaxInt64/d {
			return fmt.Errorf("%w: tensor %q: shape %v overflows", ErrFormat, info.Name, info.Shape)
		}
		n *= d
	}
	if n != info.End-info.Begin {
		return fmt.Errorf("%w: tensor %q: %s %v needs %d bytes, data_offsets give %d", ErrFormat, info.Name, info.DType, info.Shape, n, info.End-info.Begin)
	}
	return nil
}

// File is an open safetensors file.
type File struct {
	Metadata map[string]string

	r       io.ReaderAt
	closer  io.Closer
	data    int64 // offset of the data section
	tensors map[string]Info
	names   []string
}

// Open reads the header of the file at path. Tensors are read when asked for.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	sf, err := NewReader(f, st.Size())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", path, err), f.Close())
	}
	sf.closer = f
	return sf, nil
}

// NewReader reads the header of a safetensors file of size bytes held by r.
func NewReader(r io.ReaderAt, size int64) (*File, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the 8-byte header length", ErrFormat, size)
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeader || int64(n) > size-8 {
		return nil, fmt.Errorf("%w: header length %d does not fit a %d-byte file (limit %d)", ErrFormat, n, size, MaxHeader)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := ParseHeader(header, size-8-int64(n))
	if err != nil {
		return nil, err
	}
	f := &File{Metadata: h.Metadata, r: r, data: 8 + int64(n), tensors: make(map[string]Info, len(h.Tensors))}
	for _, t := range h.Tensors {
		f.tensors[t.Name] = t
		f.names = append(f.names, t.Name)
	}
	slices.Sort(f.names)
	return f, nil
}

// Names lists the tensors, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Info describes one tensor.
func (f *File) Info(name string) (Info, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// ErrNotFound is wrapped when a tensor is not in the file.
var ErrNotFound = errors.New("tensor not in file")

// Raw reads one tensor's bytes as stored (little-endian).
func (f *File) Raw(name string) ([]byte, Info, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, t, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	buf := make([]byte, t.End-t.Begin)
	if _, err := f.r.ReadAt(buf, f.data+t.Begin); err != nil {
		return nil, t, fmt.Errorf("read tensor %q: %w", name, err)
	}
	return buf, t, nil
}

// Floats reads one tensor of a float type (F32, F16, BF16, F64) as float32.
func (f *File) Floats(name string) ([]float32, Info, error) {
	raw, t, err := f.Raw(name)
	if err != nil {
		return nil, t, err
	}
	out, err := Decode(raw, t.DType)
	if err != nil {
		return nil, t, fmt.Errorf("tensor %q: %w", name, err)
	}
	return out, t, nil
}

// Decode converts little-endian bytes of a float type to float32.
func Decode(raw []byte, d DType) ([]float32, error) {
	size := d.Size()
	if size == 0 || len(raw)%size != 0 {
		return nil, fmt.Errorf("%d bytes of %s", len(raw), d)
	}
	out := make([]float32, len(raw)/size)
	switch d {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = onnx.HalfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("dtype %s is not a float type (F32, F16, BF16, F64)", d)
	}
	return out, nil
}

// Close closes the file Open opened; it is idempotent. A File from NewReader owns nothing.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}
