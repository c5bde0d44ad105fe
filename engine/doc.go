// Package engine is diffsim's boundary with ONNX Runtime, and the only package that imports
// onnxruntime_go (cgo). It finds the runtime library, initialises it once per process, picks
// the execution provider (CUDA when asked for or available, CPU otherwise), opens sessions
// from bytes or files, and hands tensors in and out as plain Go values.
//
// Above engine, nothing holds a *Runtime or a *Session: a loaded graph is a Runner (Run,
// Close, its inputs and outputs), opened through an interface declared where it is used
// (features.Loader; session.Runtime adds the device and Close), which *Runtime satisfies. So
// features and session are tested with fakes and without cgo.
//
// Built without cgo, every entry point returns ErrNoCgo, so the packages above it still build
// and test with CGO_ENABLED=0.
package engine
