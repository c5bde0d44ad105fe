//go:build cgo

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// process holds the one ONNX Runtime environment of this process. onnxruntime_go keeps the
// environment in package state and allows one at a time, so the engine counts the runtimes
// using it and destroys it when the last one closes.
var process struct {
	mu   sync.Mutex
	refs int
	lib  string
}

// Options choose the runtime library, the execution provider and threading.
type Options struct {
	Library string // explicit library path (the --ort-lib flag); empty: ONNXRUNTIME_LIB, then the cache
	Device  string // auto, cpu, cuda or cuda:ID; empty means auto
	Threads int    // intra-op threads; 0 means one per CPU
	// GraphCache, when set, keeps optimized graphs of large models between processes.
	GraphCache *GraphCache
}

// Runtime is an initialised ONNX Runtime with a chosen execution provider.
type Runtime struct {
	opts   Options
	lib    string
	source LibrarySource
	device Device

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closed   bool
}

// Open initialises ONNX Runtime (once per process) and picks the execution provider.
func Open(opts Options) (*Runtime, error) {
	want, err := ParseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	lib, src, err := FindLibrary(opts.Library)
	if err != nil {
		return nil, err
	}
	if err := acquire(lib); err != nil {
		return nil, err
	}
	r := &Runtime{opts: opts, lib: lib, source: src, sessions: map[*Session]struct{}{}}
	r.device, err = r.pickDevice(want)
	if err != nil {
		return nil, errors.Join(err, release())
	}
	return r, nil
}

func acquire(lib string) error {
	process.mu.Lock()
	defer process.mu.Unlock()
	if process.refs > 0 {
		if process.lib != lib {
			return fmt.Errorf("ONNX Runtime is already running from %s in this process; cannot also load %s", process.lib, lib)
		}
		process.refs++
		return nil
	}
	if err := checkLibraryFile(lib); err != nil {
		return err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("load ONNX Runtime from %s: %v; run scripts/setup-runtime.sh or point ONNXRUNTIME_LIB at libonnxruntime.so %s or newer", lib, err, RuntimeVersion)
	}
	process.refs, process.lib = 1, lib
	return nil
}

// checkLibraryFile rejects files that are not ELF shared objects before dlopen sees them, so a
// wrong path gives a sentence instead of a loader message.
func checkLibraryFile(lib string) error {
	f, err := os.Open(lib)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoLibrary, err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := f.Read(magic); err != nil || string(magic) != "\x7fELF" {
		return fmt.Errorf("%s is not a shared library (no ELF header); point ONNXRUNTIME_LIB at libonnxruntime.so", lib)
	}
	return nil
}

func release() error {
	process.mu.Lock()
	defer process.mu.Unlock()
	if process.refs == 0 {
		return nil
	}
	process.refs--
	if process.refs > 0 {
		return nil
	}
	process.lib = ""
	return ort.DestroyEnvironment()
}

// pickDevice tries CUDA when asked for, or for auto when the machine has a GPU (gpu.go), and
// falls back to CPU for auto: silently without a GPU, with a one-line notice with one.
func (r *Runtime) pickDevice(want Device) (Device, error) {
	if want.Kind == "cpu" {
		return Device{Kind: "cpu"}, nil
	}
	gpu := GPUPresent()
	switch {
	case want.Auto && !gpu:
		return Device{Kind: "cpu", Auto: true}, nil
	case !gpu:
		return Device{}, cudaError(want.ID, false, nil)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return Device{}, err
	}
	defer opts.Destroy()
	err = appendCUDA(opts, want.ID)
	if err == nil {
		return Device{Kind: "cuda", ID: want.ID, Auto: want.Auto}, nil
	}
	if !want.Auto {
		return Device{}, cudaError(want.ID, gpu, err)
	}
	return Device{Kind: "cpu", Auto: true, Notice: cudaNotice(err)}, nil
}

func appendCUDA(opts *ort.SessionOptions, id int) error {
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(id)}); err != nil {
		return err
	}
	return opts.AppendExecutionProviderCUDA(cuda)
}

// Library is the path of the runtime library in use, and where it came from.
func (r *Runtime) Library() (string, LibrarySource) { return r.lib, r.source }

// Version is the ONNX Runtime version the library reports.
func (r *Runtime) Version() string { return ort.GetVersion() }

// Device is the execution provider sessions run on.
func (r *Runtime) Device() Device { return r.device }

// Close frees every session still open and releases the runtime. It is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	open := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		open = append(open, s)
	}
	r.mu.Unlock()
	var errs []error
	for _, s := range open {
		errs = append(errs, s.Close())
	}
	errs = append(errs, release())
	return errors.Join(errs...)
}

// SessionOptions configure one session.
type SessionOptions struct {
	// ExternalDataDir is the folder external weights are read from when the model is given
	// as bytes (typically the folder of the original model file).
	ExternalDataDir string
	// Outputs are the outputs Run returns, in order; empty means the graph's outputs.
	Outputs []string
}

// Session is a loaded model, ready to run.
type Session struct {
	rt      *Runtime
	sess    *ort.DynamicAdvancedSession
	inputs  []IOInfo
	outputs []IOInfo
	outSel  []string

	mu      sync.Mutex // Run calls on one session are serialised: they share the C session
	closed  bool
	runOpts *ort.RunOptions
	// noBuffers: the runtime refused an output buffer once, so RunShaped offers none again.
	noBuffers bool
}

// LoadFile opens the model at path; external weights are looked up beside it.
func (r *Runtime) LoadFile(path string, so SessionOptions) (*Session, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	if so.ExternalDataDir == "" {
		so.ExternalDataDir = filepath.Dir(path)
	}
	s, err := r.LoadSession(data, so)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Load opens a model from its bytes as a Runner, the interface the packages above engine
// depend on (features.Loader).
func (r *Runtime) Load(model []byte, so SessionOptions) (Runner, error) {
	s, err := r.LoadSession(model, so)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return s, nil
}

// LoadSession opens a model from its bytes.
func (r *Runtime) LoadSession(model []byte, so SessionOptions) (*Session, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, errors.New("engine: runtime is closed")
	}
	// The structure only: weights embedded in the model are not copied into Go memory, where
	// they would stay (as garbage until the collector returns them) beside the runtime's copy.
	m, err := onnx.ParseStructure(model)
	if err != nil {
		return nil, err
	}
	inputs, outputs := graphIO(m.GetGraph())
	outSel := so.Outputs
	if len(outSel) == 0 {
		for _, o := range outputs {
			outSel = append(outSel, o.Name)
		}
	}
	inNames := make([]string, len(inputs))
	for i, in := range inputs {
		inNames[i] = in.Name
	}

	opts, err := r.sessionOptions(so)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	sess, err := r.newSession(model, m, so, inNames, outSel, opts)
	if err != nil {
		return nil, fmt.Errorf("create session: %v", firstLine(err))
	}
	s := &Session{rt: r, sess: sess, inputs: inputs, outputs: outputs, outSel: outSel}
	r.mu.Lock()
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	return s, nil
}

func (r *Runtime) sessionOptions(so SessionOptions) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	threads := r.opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	steps := []error{
		opts.SetIntraOpNumThreads(threads),
		// diffsim's graphs are chains; parallel branches are rare, so one inter-op thread avoids
		// oversubscribing the cores the intra-op pool already uses.
		opts.SetInterOpNumThreads(1),
		// diffsim alternates sessions (a model, then the attention graph); threads left
		// spinning by one steal the cores the next one needs.
		opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"),
	}
	if so.ExternalDataDir != "" {
		steps = append(steps, opts.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", so.ExternalDataDir))
	}
	if r.device.Kind == "cuda" {
		steps = append(steps, appendCUDA(opts, r.device.ID))
	}
	if err := errors.Join(steps...); err != nil {
		return nil, errors.Join(err, opts.Destroy())
	}
	return opts, nil
}

// graphIO lists the graph inputs that are fed at run time (not initializers) and its outputs.
func graphIO(g *onnxpb.GraphProto) (inputs, outputs []IOInfo) {
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, vi := range g.GetInput() {
		if !inits[vi.GetName()] {
			inputs = append(inputs, ioInfo(vi))
		}
	}
	for _, vi := range g.GetOutput() {
		outputs = append(outputs, ioInfo(vi))
	}
	return inputs, outputs
}

// Inputs are the inputs Run needs.
func (s *Session) Inputs() []IOInfo { return s.inputs }

// Outputs are the graph's declared outputs (Run returns the selected ones).
func (s *Session) Outputs() []IOInfo { return s.outputs }

// OutputNames are the outputs Run returns, in order.
func (s *Session) OutputNames() []string { return s.outSel }

// Run feeds the inputs (by name, any order) and returns the selected outputs in order.
// Cancelling ctx terminates a run in flight.
func (s *Session) Run(ctx context.Context, inputs ...Tensor) ([]Tensor, error) {
	return s.RunShaped(ctx, nil, inputs...)
}

// RunShaped is Run with the shapes the outputs will have, where the caller knows them: the
// runtime writes those outputs straight into Go buffers. If a run with buffers fails, whatever
// the runtime's message (a shape or type the caller got wrong is reported in several ways,
// and not always before the run), it is repeated without buffers; when that run succeeds the
// buffers were at fault and the session offers none again. So a wrong guess costs time once
// and never changes a result or fails a run.
func (s *Session) RunShaped(ctx context.Context, shapes [][]int64, inputs ...Tensor) ([]Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("engine: session is closed")
	}
	if len(shapes) > 0 && len(shapes) != len(s.outSel) {
		return nil, fmt.Errorf("engine: %d output shapes for %d outputs", len(shapes), len(s.outSel))
	}
	if s.noBuffers {
		shapes = nil
	}
	out, err := s.run(ctx, shapes, inputs)
	if err != nil && shapes != nil && ctx.Err() == nil {
		out, err = s.run(ctx, nil, inputs)
		s.noBuffers = err == nil
	}
	return out, err
}

// BuffersRefused reports whether a run with the buffers RunShaped offered once failed where
// the same run without them succeeded (a caller's shapes were wrong), so that it offers none
// any more.
func (s *Session) BuffersRefused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noBuffers
}

// run is one run; the caller holds s.mu.
func (s *Session) run(ctx context.Context, shapes [][]int64, inputs []Tensor) ([]Tensor, error) {
	byName := map[string]Tensor{}
	for _, t := range inputs {
		if _, dup := byName[t.Name]; dup {
			return nil, fmt.Errorf("input %q given twice", t.Name)
		}
		byName[t.Name] = t
	}
	values := make([]ort.Value, len(s.inputs))
	defer destroyAll(values)
	for i, info := range s.inputs {
		t, ok := byName[info.Name]
		if !ok {
			return nil, fmt.Errorf("missing input %q (the model wants %s)", info.Name, ioNames(s.inputs))
		}
		delete(byName, info.Name)
		if err := checkInput(info, t); err != nil {
			return nil, err
		}
		v, err := toValue(t)
		if err != nil {
			return nil, err
		}
		values[i] = v
	}
	for name := range byName {
		return nil, fmt.Errorf("unknown input %q (the model wants %s)", name, ioNames(s.inputs))
	}

	// One RunOptions per session, reused: Run calls are serialised by s.mu. Cancelling ctx
	// sets its terminate flag from context.AfterFunc, which costs no goroutine per run.
	var err error
	if s.runOpts == nil {
		if s.runOpts, err = ort.NewRunOptions(); err != nil {
			return nil, err
		}
	}
	outs, err := s.outputBuffers(shapes)
	if err != nil {
		return nil, err
	}
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		s.runOpts.Terminate()
		close(terminated)
	})
	err = s.sess.RunWithOptions(values, outs, s.runOpts)
	if !stop() {
		// The flag is set, or about to be: wait for it, then clear it for the next run.
		<-terminated
		s.runOpts.UnsetTerminate()
	}
	defer destroyAll(outs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("run: %v", firstLine(err))
	}
	return copyOutputs(s.outSel, outs, fromValue)
}

// outputBuffers makes a Go-backed tensor for each selected output whose shape is given and
// whose declared type is float32 (or undeclared); the others stay nil, for the runtime to
// allocate.
func (s *Session) outputBuffers(shapes [][]int64) ([]ort.Value, error) {
	outs := make([]ort.Value, len(s.outSel))
	if shapes == nil {
		return outs, nil
	}
	declared := map[string]ElemType{}
	for _, o := range s.outputs {
		declared[o.Name] = o.Type
	}
	for i, shape := range shapes {
		n := int64(1)
		for _, d := range shape {
			n *= max(d, 0)
		}
		if t := declared[s.outSel[i]]; shape == nil || n == 0 || (t != Float32 && t != 0) {
			continue
		}
		v, err := ort.NewTensor(ort.NewShape(shape...), make([]float32, n))
		if err != nil {
			destroyAll(outs)
			return nil, fmt.Errorf("output %q: %w", s.outSel[i], err)
		}
		outs[i] = v
	}
	return outs, nil
}

// copyOutputs turns each ORT output into a Tensor with from and destroys that ORT value
// (clearing its slot) before the next. onnxruntime_go has already copied the runtime's
// outputs into Go memory (or the runtime wrote them into RunShaped's buffers), so from only
// takes the slices; destroying as it goes means a from that copies never holds the set twice.
// On an error the values not yet converted are destroyed too, so outs holds nothing live when
// it returns.
func copyOutputs(names []string, outs []ort.Value, from func(string, ort.Value) (Tensor, error)) ([]Tensor, error) {
	defer func() {
		destroyAll(outs)
		clear(outs)
	}()
	result := make([]Tensor, len(outs))
	for i, v := range outs {
		t, err := from(names[i], v)
		destroyAll(outs[i : i+1])
		outs[i] = nil
		if err != nil {
			return nil, err
		}
		result[i] = t
	}
	return result, nil
}

// Close frees the session; it is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.rt.mu.Lock()
	delete(s.rt.sessions, s)
	s.rt.mu.Unlock()
	var err error
	if s.runOpts != nil {
		err = s.runOpts.Destroy()
	}
	return errors.Join(err, s.sess.Destroy())
}

// destroyAll frees values, skipping nil ones, including typed nils inside the interface that
// onnxruntime_go leaves when it fails to convert an output.
func destroyAll(values []ort.Value) {
	for _, v := range values {
		if v == nil {
			continue
		}
		if x, ok := v.(*ort.CustomDataTensor); ok && x == nil {
			continue
		}
		if x, ok := v.(*ort.Tensor[float32]); ok && x == nil {
			continue
		}
		v.Destroy()
	}
}

func checkInput(info IOInfo, t Tensor) error {
	if err := t.validate(); err != nil {
		return err
	}
	if info.Type != 0 && t.Type != info.Type {
		return fmt.Errorf("input %q: got %v, the model wants %v", t.Name, t.Type, info.Type)
	}
	if info.Shape != nil {
		if len(t.Shape) != len(info.Shape) {
			return fmt.Errorf("input %q: got shape %v, the model wants rank %d (%v)", t.Name, t.Shape, len(info.Shape), info)
		}
		for k, d := range info.Shape {
			if d >= 0 && t.Shape[k] != d {
				return fmt.Errorf("input %q: got shape %v, the model wants %v", t.Name, t.Shape, info)
			}
		}
	}
	return nil
}

func toValue(t Tensor) (ort.Value, error) {
	shape := ort.NewShape(t.Shape...)
	if len(t.Shape) == 0 {
		// onnxruntime_go makes rank-0 values with its Scalar type (a timestep may be one).
		switch t.Type {
		case Float32:
			return ort.NewScalar(t.Float32[0])
		case Int64:
			return ort.NewScalar(t.Int64[0])
		case Int32:
			return ort.NewScalar(t.Int32[0])
		case Float16:
			return nil, fmt.Errorf("input %q: a float16 scalar is not supported; use shape [1]", t.Name)
		}
	}
	switch t.Type {
	case Float32:
		return ort.NewTensor(shape, t.Float32)
	case Int64:
		return ort.NewTensor(shape, t.Int64)
	case Int32:
		return ort.NewTensor(shape, t.Int32)
	case Float16:
		raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.Float16))), 2*len(t.Float16))
		return ort.NewCustomDataTensor(shape, raw, ort.TensorElementDataTypeFloat16)
	}
	return nil, fmt.Errorf("input %q: unsupported element type %v", t.Name, t.Type)
}

func fromValue(name string, v ort.Value) (Tensor, error) {
	shape := []int64(v.GetShape())
	switch x := v.(type) {
	// onnxruntime_go has already copied the runtime's output into a Go slice and released the
	// runtime's buffer; the value it returns only wraps that slice (Destroy releases the
	// wrapper, never the slice), so the slice is taken as it is. Copying it again held every
	// layer's Q/K/V twice in Go memory at the peak (about 0.55 GB at 512 px, batch 2).
	case *ort.Tensor[float32]:
		return Tensor{Name: name, Shape: shape, Type: Float32, Float32: x.GetData()}, nil
	case *ort.Tensor[int64]:
		return Tensor{Name: name, Shape: shape, Type: Int64, Int64: x.GetData()}, nil
	case *ort.Tensor[int32]:
		return Tensor{Name: name, Shape: shape, Type: Int32, Int32: x.GetData()}, nil
	case *ort.CustomDataTensor:
		raw := x.GetData()
		n := int(ort.Shape(shape).FlattenedSize())
		// onnxruntime_go v1.27 copies one byte per element for types it has no Go type for,
		// which truncates float16; refuse rather than return half a tensor.
		if len(raw) != 2*n {
			return Tensor{}, fmt.Errorf("output %q: %d-byte elements are not supported; add a Cast to float32 in the graph", name, len(raw)/max(n, 1))
		}
		h := make([]uint16, n)
		for i := range h {
			h[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
		}
		return Tensor{Name: name, Shape: shape, Type: Float16, Float16: h}, nil
	}
	return Tensor{}, fmt.Errorf("output %q: unsupported value type %T", name, v)
}

func ioInfo(vi *onnxpb.ValueInfoProto) IOInfo {
	info := IOInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return info
	}
	info.Type = ElemType(tt.GetElemType())
	if tt.GetShape() == nil {
		return info
	}
	info.Shape = []int64{}
	for _, d := range tt.GetShape().GetDim() {
		if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			info.Shape = append(info.Shape, dv.DimValue)
			info.Dims = append(info.Dims, "")
			continue
		}
		info.Shape = append(info.Shape, -1)
		info.Dims = append(info.Dims, d.GetDimParam())
	}
	return info
}

func ioNames(infos []IOInfo) string {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.String()
	}
	return strings.Join(names, ", ")
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
