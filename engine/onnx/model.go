// Package onnx reads, inspects, builds and writes ONNX models as Go values, without cgo.
//
// Models are the generated protobuf types of package onnxpb. Fields diffsim's schema does not
// name survive a read/write round trip as unknown fields, so a model from a newer exporter is
// written back with everything it had.
package onnx

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/renameio/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// maxModelBytes bounds how much a single .onnx file may hold in memory. Protobuf caps a message
// at 2 GiB; exporters store larger weights as external data beside the file.
const maxModelBytes = 2 << 30

// ErrNotONNX is returned for bytes that do not decode as an ONNX model with a graph.
var ErrNotONNX = errors.New("not an ONNX model")

// Parse decodes an ONNX model. Initializers stored as external data are not loaded.
func Parse(data []byte) (*onnxpb.ModelProto, error) {
	if len(data) > maxModelBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the 2 GiB protobuf limit", ErrNotONNX, len(data))
	}
	m := &onnxpb.ModelProto{}
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	if m.GetGraph() == nil || m.GetIrVersion() == 0 {
		return nil, fmt.Errorf("%w: no graph or no ir_version", ErrNotONNX)
	}
	return m, nil
}

// ReadFile reads and decodes the model at path. External weights stay on disk.
func ReadFile(path string) (*onnxpb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Marshal encodes a model deterministically, so the same model always gives the same bytes.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// WriteFile writes a model to path atomically (renameio: a temporary file in the same folder,
// fsync, rename), so a reader never sees half a model and a crash leaves no stray file
// behind under a fixed name.
func WriteFile(path string, m *onnxpb.ModelProto) error {
	data, err := Marshal(m)
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o644)
}

// AppendOutputs returns the model bytes with extra graph outputs named names. It relies on
// protobuf's merge rule (repeated fields concatenate), so a large model is never decoded and
// re-encoded: the original bytes are kept and a small `graph { output { name } }` is appended.
// ONNX Runtime accepts outputs without type information.
func AppendOutputs(model []byte, names []string) []byte {
	var graph []byte
	for _, name := range names {
		var vi []byte
		vi = protowire.AppendTag(vi, 1, protowire.BytesType) // ValueInfoProto.name
		vi = protowire.AppendString(vi, name)
		graph = protowire.AppendTag(graph, 12, protowire.BytesType) // GraphProto.output
		graph = protowire.AppendBytes(graph, vi)
	}
	out := make([]byte, 0, len(model)+len(graph)+8)
	out = append(out, model...)
	out = protowire.AppendTag(out, 7, protowire.BytesType) // ModelProto.graph
	out = protowire.AppendBytes(out, graph)
	return out
}

// Opset returns the version of the default ONNX domain the model imports, or 0.
func Opset(m *onnxpb.ModelProto, domain string) int64 {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == domain || (domain == "" && o.GetDomain() == "ai.onnx") {
			return o.GetVersion()
		}
	}
	return 0
}

// Merge decodes encoded model fields (such as the bytes AppendOutputs or attention.Instrument
// append to a model) into m, by protobuf's merge rule: repeated fields concatenate. m then is
// the model those bytes appended to m's own would decode to, without decoding m's bytes again.
func Merge(m *onnxpb.ModelProto, suffix []byte) error {
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(suffix, m); err != nil {
		return fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	return nil
}
