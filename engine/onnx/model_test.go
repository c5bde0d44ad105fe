package onnx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

func tinyModel(t *testing.T) *onnxpb.ModelProto {
	t.Helper()
	b := NewBuilder("tiny")
	x := b.Input("x", Float, 1, 4)
	b.Node("Relu", "/relu", []string{x})
	b.Output("/relu_output_0", Float, 1, 4)
	return b.Model()
}

// Fields a newer ONNX adds (unknown to this schema) survive a read/write round trip, at the
// model level and deep inside a node.
func TestUnknownFieldsSurviveRoundTrip(t *testing.T) {
	m := tinyModel(t)
	node := m.GetGraph().GetNode()[0]
	var extra []byte
	extra = protowire.AppendTag(extra, 77, protowire.BytesType)
	extra = protowire.AppendString(extra, "from the future")
	node.ProtoReflect().SetUnknown(extra)
	var top []byte
	top = protowire.AppendTag(top, 99, protowire.VarintType)
	top = protowire.AppendVarint(top, 12345)
	m.ProtoReflect().SetUnknown(top)

	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.GetGraph().GetNode()[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, extra) {
		t.Errorf("node's unknown field: %x, want %x", got, extra)
	}
	if got := back.ProtoReflect().GetUnknown(); !bytes.Equal(got, top) {
		t.Errorf("model's unknown field: %x, want %x", got, top)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Error("a second round trip changed the bytes")
	}
}

// AppendOutputs adds outputs by appending bytes: the original bytes are a prefix, and the
// result decodes to the model with the outputs added.
func TestAppendOutputs(t *testing.T) {
	m := tinyModel(t)
	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := AppendOutputs(data, []string{"x", "extra"})
	if !bytes.HasPrefix(out, data) {
		t.Fatal("the original bytes are not kept as they are")
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range back.GetGraph().GetOutput() {
		names = append(names, o.GetName())
	}
	if len(names) != 3 || names[1] != "x" || names[2] != "extra" {
		t.Errorf("outputs %v", names)
	}
	if !proto.Equal(back.GetGraph().GetNode()[0], m.GetGraph().GetNode()[0]) {
		t.Error("the node changed")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("garbage"), {0x0a, 0xff}} {
		if _, err := Parse(data); !errors.Is(err, ErrNotONNX) {
			t.Errorf("%q: err = %v, want ErrNotONNX", data, err)
		}
	}
}

func TestHalfFloatRoundTrip(t *testing.T) {
	for _, f := range []float32{0, 1, -2.5, 0.000061035156, 65504, 1e-7} {
		h := FloatToHalf(f)
		got := HalfToFloat(h)
		if d := got - f; d > 1e-3*abs(f)+6e-8 || -d > 1e-3*abs(f)+6e-8 {
			t.Errorf("%g → %#04x → %g", f, h, got)
		}
	}
}

func abs(f float32) float32 {
	if f < 0 {
		return -f
	}
	return f
}

// TestWriteFileIsAtomic: the model lands whole under its name, over an older one, and no
// temporary file is left in the folder.
func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, []byte("an older model"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := NewBuilder("atomic")
	x := b.Input("x", Float, 1, 2)
	b.Output(b.Node("Relu", "/Relu", []string{x}), Float, 1, 2)
	if err := WriteFile(path, b.Model()); err != nil {
		t.Fatal(err)
	}
	m, err := ReadFile(path)
	if err != nil || m.GetGraph().GetNode()[0].GetOpType() != "Relu" {
		t.Fatalf("read back: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want model.onnx alone", names)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "model.onnx"), b.Model()); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}
