package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func encode(t testing.TB, tensors []Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rangeReader records which byte ranges were read.
type rangeReader struct {
	data  []byte
	reads [][2]int64
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	r.reads = append(r.reads, [2]int64{off, off + int64(len(p))})
	return bytes.NewReader(r.data).ReadAt(p, off)
}

func TestRoundTrip(t *testing.T) {
	vals := []float32{1, -2.5, 0.333, 65504, 1e-3, 0}
	tensors := []Tensor{
		Float32s("a.weight", []int64{2, 3}, vals),
		Float16s("b.weight", []int64{3, 2}, vals),
		BFloat16s("c.bias", []int64{6}, vals),
		Float32s("scalar", nil, []float32{7}),
	}
	data := encode(t, tensors, map[string]string{"format": "pt"})
	if hl := binary.LittleEndian.Uint64(data); hl%8 != 0 {
		t.Errorf("header length %d is not padded to 8", hl)
	}
	f, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	if got := strings.Join(f.Names(), ","); got != "a.weight,b.weight,c.bias,scalar" {
		t.Errorf("names %s", got)
	}
	for _, tc := range []struct {
		name string
		tol  float64 // relative
	}{{"a.weight", 0}, {"b.weight", 1e-3}, {"c.bias", 8e-3}} {
		got, info, err := f.Floats(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Elements() != 6 || len(got) != 6 {
			t.Fatalf("%s: %d values, info %+v", tc.name, len(got), info)
		}
		for i, v := range vals {
			if d := math.Abs(float64(got[i] - v)); d > tc.tol*math.Abs(float64(v))+1e-7 {
				t.Errorf("%s[%d] = %g, want %g", tc.name, i, got[i], v)
			}
		}
	}
	s, info, err := f.Floats("scalar")
	if err != nil || len(s) != 1 || s[0] != 7 || len(info.Shape) != 0 {
		t.Errorf("scalar: %v %+v %v", s, info, err)
	}
	if _, _, err := f.Floats("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
}

// TestReadsOnlyWhatIsAsked checks that reading one tensor touches the header and that
// tensor's bytes, nothing else.
func TestReadsOnlyWhatIsAsked(t *testing.T) {
	big := make([]float32, 1<<16)
	data := encode(t, []Tensor{Float32s("big", []int64{1 << 16}, big), Float32s("small", []int64{2}, []float32{1, 2})}, nil)
	r := &rangeReader{data: data}
	f, err := NewReader(r, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	headerEnd := 8 + int64(binary.LittleEndian.Uint64(data))
	for _, rd := range r.reads {
		if rd[1] > headerEnd {
			t.Errorf("opening read %v, past the header (%d)", rd, headerEnd)
		}
	}
	r.reads = nil
	if _, _, err := f.Floats("small"); err != nil {
		t.Fatal(err)
	}
	info, _ := f.Info("small")
	if len(r.reads) != 1 || r.reads[0] != [2]int64{headerEnd + info.Begin, headerEnd + info.End} {
		t.Errorf("reading small read %v, want only [%d %d]", r.reads, headerEnd+info.Begin, headerEnd+info.End)
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := os.WriteFile(path, encode(t, []Tensor{Float32s("x", []int64{1}, []float32{3})}, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := f.Floats("x"); err != nil || v[0] != 3 {
		t.Errorf("x = %v, %v", v, err)
	}
	if err := errors.Join(f.Close(), f.Close()); err != nil {
		t.Errorf("Close twice: %v", err)
	}
}

func withHeader(h string, data int) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(out, h...)
	return append(out, make([]byte, data)...)
}

func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<62), "does not fit"},
		{"not json", withHeader("{nope", 0), "not a JSON object"},
		{"unknown dtype", withHeader(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}`, 1), "unknown dtype"},
		{"past the end", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "outside"},
		{"wrong length", withHeader(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12 bytes"},
		{"negative dim", withHeader(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8), "negative"},
		{"overflow", withHeader(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, 8), "overflows"},
		{"overlap", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlap"},
		{"bad metadata", withHeader(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
		{"one offset", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.data), int64(len(tc.data)))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrFormat mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDecodeRejectsIntegers(t *testing.T) {
	if _, err := Decode(make([]byte, 8), I64); err == nil {
		t.Error("Decode(I64): no error")
	}
}

// FuzzReader feeds arbitrary bytes: NewReader and every tensor read must not panic, and a
// header that parses must describe ranges inside the file.
func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	_ = Write(&buf, []Tensor{Float32s("a", []int64{2}, []float32{1, 2}), Float16s("b", []int64{1, 1}, []float32{3})}, map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(withHeader(`{"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`, 2))
	f.Add(withHeader(`{}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, name := range r.Names() {
			info, _ := r.Info(name)
			if r.data+info.End > int64(len(data)) {
				t.Fatalf("tensor %q ends at %d, past the %d-byte file", name, r.data+info.End, len(data))
			}
			if _, _, err := r.Raw(name); err != nil {
				t.Fatalf("Raw(%q): %v", name, err)
			}
			_, _, _ = r.Floats(name)
		}
	})
}
