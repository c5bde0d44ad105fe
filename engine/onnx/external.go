package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// ExternalInfo is where an external tensor's bytes live, relative to the model's folder.
type ExternalInfo struct {
	Location string
	Offset   int64
	Length   int64 // -1 when the entry leaves it out (the rest of the file)
}

// External reads a tensor's external-data entries.
func External(t *onnxpb.TensorProto) (ExternalInfo, error) {
	info := ExternalInfo{Length: -1}
	for _, e := range t.GetExternalData() {
		switch e.GetKey() {
		case "location":
			info.Location = e.GetValue()
		case "offset", "length":
			v, err := strconv.ParseInt(e.GetValue(), 10, 64)
			if err != nil || v < 0 {
				return info, fmt.Errorf("tensor %q: bad external %s %q", t.GetName(), e.GetKey(), e.GetValue())
			}
			if e.GetKey() == "offset" {
				info.Offset = v
			} else {
				info.Length = v
			}
		}
	}
	if info.Location == "" {
		return info, fmt.Errorf("tensor %q: external data without a location", t.GetName())
	}
	return info, nil
}

// MoveToExternal stores every float initializer of at least minBytes in one file, name,
// inside dir, and rewrites the tensors to point at it, as exporters do for large models.
// It writes the data file; the caller writes the model (also into dir).
func MoveToExternal(m *onnxpb.ModelProto, dir, name string, minBytes int) error {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	var offset int64
	for _, t := range m.GetGraph().GetInitializer() {
		if t.GetDataType() != Float || IsExternal(t) {
			continue
		}
		vals, err := Floats(t)
		if err != nil {
			f.Close()
			return err
		}
		if 4*len(vals) < minBytes {
			continue
		}
		raw := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		if _, err := f.Write(raw); err != nil {
			f.Close()
			return err
		}
		t.RawData, t.FloatData = nil, nil
		t.DataLocation = onnxpb.TensorProto_EXTERNAL
		t.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: "location", Value: name},
			{Key: "offset", Value: strconv.FormatInt(offset, 10)},
			{Key: "length", Value: strconv.Itoa(len(raw))},
		}
		offset += int64(len(raw))
	}
	return f.Close()
}
