package attention_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

func TestNoAttention(t *testing.T) {
	b := onnx.NewBuilder("classifier")
	x := b.Input("x", onnx.Float, 1, 4)
	logits := b.Node("MatMul", "/fc/MatMul", []string{x, b.Floats("w", []int64{4, 3}, make([]float32, 12))})
	b.Output(b.Node("Softmax", "/Softmax", []string{logits}), onnx.Float, 1, 3)
	_, err := attention.Find(b.Model())
	if !errors.Is(err, attention.ErrNoAttention) {
		t.Fatalf("Find on a classifier: %v, want ErrNoAttention", err)
	}
}

// TestUnresolved builds attention whose query comes through an op the finder cannot see
// through (a rotary-style Add of two data tensors, after the head split): Find must name it.
func TestUnresolved(t *testing.T) {
	b := onnx.NewBuilder("rotary")
	x := b.Input("x", onnx.Float, 1, 4, 8)
	r := b.Input("rot", onnx.Float, 1, 2, 4, 4)
	split := func(name string) string {
		p := b.Node("MatMul", "/attn/"+name+"/MatMul", []string{x, b.Floats(name+".w", []int64{8, 8}, make([]float32, 64))})
		p = b.Node("Reshape", "/attn/"+name+"/Reshape", []string{p, b.Ints(name+".shape", []int64{4}, []int64{0, 0, 2, 4})})
		return b.Node("Transpose", "/attn/"+name+"/Transpose", []string{p}, onnx.AttrInts("perm", 0, 2, 1, 3))
	}
	q := b.Node("Add", "/attn/rotary/Add", []string{split("q"), r})
	k := b.Node("Add", "/attn/rotary/Add_1", []string{b.Node("Transpose", "/attn/Transpose", []string{split("k")}, onnx.AttrInts("perm", 0, 1, 3, 2)), b.Node("Transpose", "/attn/Transpose_1", []string{r}, onnx.AttrInts("perm", 0, 1, 3, 2))})
	s := b.Node("MatMul", "/attn/MatMul", []string{q, k})
	p := b.Node("Softmax", "/attn/Softmax", []string{s}, onnx.AttrInt("axis", -1))
	b.Output(b.Node("MatMul", "/attn/MatMul_1", []string{p, split("v")}), 0)
	_, err := attention.Find(b.Model())
	var we *attention.WalkError
	if !errors.As(err, &we) {
		t.Fatalf("Find: %v, want a *WalkError", err)
	}
	if we.Node != "/attn/rotary/Add" || we.Op != "Add" || we.Layer != "attn" {
		t.Fatalf("WalkError %+v, want it to stop at /attn/rotary/Add in layer attn", we)
	}
	if !strings.Contains(err.Error(), "/attn/rotary/Add") {
		t.Errorf("message %q does not name the node", err)
	}
}

// TestInstrumentKeepsModel checks that instrumenting appends to the original bytes and keeps
// every field: IR version, opsets, functions, metadata and external-data references.
func TestInstrumentKeepsModel(t *testing.T) {
	o := testgraphs.TinyUNet()
	m, _ := testgraphs.SDUNet(o)
	dir := t.TempDir()
	if err := onnx.MoveToExternal(m, dir, "model.onnx_data", 64); err != nil {
		t.Fatal(err)
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: "source", Value: "test"})
	m.Functions = append(m.Functions, &onnxpb.FunctionProto{Name: "unused", Domain: "custom"})
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(data)
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	inst, names, err := attention.Instrument(data, m, layers)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, orig) || !bytes.HasPrefix(inst, orig) {
		t.Fatal("Instrument changed the original bytes or did not append to them")
	}
	got, err := onnx.Parse(inst)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetIrVersion() != m.GetIrVersion() || !proto.Equal(&onnxpb.ModelProto{OpsetImport: got.OpsetImport, MetadataProps: got.MetadataProps, Functions: got.Functions},
		&onnxpb.ModelProto{OpsetImport: m.OpsetImport, MetadataProps: m.MetadataProps, Functions: m.Functions}) {
		t.Fatal("IR version, opsets, metadata or functions changed")
	}
	for i, init := range m.GetGraph().GetInitializer() {
		if !proto.Equal(init, got.GetGraph().GetInitializer()[i]) {
			t.Fatalf("initializer %s changed", init.GetName())
		}
	}
	var outs []string
	for _, o := range got.GetGraph().GetOutput() {
		outs = append(outs, o.GetName())
	}
	if !slices.Equal(outs, append([]string{"out_sample"}, names...)) {
		t.Fatalf("outputs %v", outs)
	}

	// The instrumented bytes run with the weights read from the original folder.
	rt := openRuntime(t)
	if _, err := os.Stat(filepath.Join(dir, "model.onnx_data")); err != nil {
		t.Fatal(err)
	}
	s, err := rt.LoadSession(inst, engine.SessionOptions{ExternalDataDir: dir, Outputs: names[:4]})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.OutputNames(); len(got) != 4 {
		t.Fatalf("outputs %v", got)
	}
}

// TestPositionalNames strips the scopes from node names, as exports from before scoped naming
// look: layers are named by position.
func TestPositionalNames(t *testing.T) {
	m, _ := testgraphs.Attention(testgraphs.DiffusersAttnProcessor, testgraphs.DefaultOptions())
	for i, n := range m.GetGraph().GetNode() {
		n.Name = n.GetOpType() + "_" + strconv.Itoa(i)
	}
	layers, err := attention.Find(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 || layers[0].Name != "attn.0" || layers[1].Name != "attn.1" || layers[1].Kind != attention.Cross {
		t.Fatalf("layers:\n%s", attention.Describe(layers))
	}
}

// TestFusedNamesFromNorm renames the merged projections of fused layers as ONNX Runtime's
// optimiser does ("MatMul_QKV_0"): the layers are named after the norm that feeds them.
func TestFusedNamesFromNorm(t *testing.T) {
	for _, v := range []testgraphs.Variant{testgraphs.MultiHeadPackedQKV, testgraphs.MSAttention} {
		m, truth := testgraphs.Attention(v, testgraphs.DefaultOptions())
		for i, n := range m.GetGraph().GetNode() {
			if strings.Contains(n.GetName(), "to_q") || strings.Contains(n.GetName(), "to_qkv") {
				n.Name = "MatMul_QKV_" + strconv.Itoa(i)
			}
		}
		layers, err := attention.Find(m)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range layers {
			if l.Name != truth.Layers[i].Name {
				t.Errorf("%s: layer %d named %q, want %q", v, i, l.Name, truth.Layers[i].Name)
			}
		}
	}
}
