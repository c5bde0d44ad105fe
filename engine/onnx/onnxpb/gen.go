// Package onnxpb holds the ONNX IR protobuf types diffsim reads and writes, generated from
// the minimal schema in onnx.proto.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
