//go:build cgo

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
)

// newSession creates the ONNX Runtime session for model, through the graph cache when the
// runtime has one and the model is large enough: a hit loads the optimized graph with the
// optimizer off; a miss optimizes as usual and has ONNX Runtime save the result on the way.
// The cache is an accelerator only: any failure to read or write it falls back to (or keeps)
// the ordinary session.
func (r *Runtime) newSession(model []byte, m *onnxpb.ModelProto, so SessionOptions, inNames, outSel []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
	gc := r.opts.GraphCache
	if gc == nil || gc.Dir == "" {
		return ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outSel, opts)
	}
	externals := externalLocations(m)
	minBytes := gc.MinBytes
	if minBytes <= 0 {
		minBytes = DefaultGraphCacheMinBytes
	}
	size := int64(len(model)) + externalBytes(so.ExternalDataDir, externals)
	if size < minBytes {
		return ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outSel, opts)
	}
	key := graphCacheKey(model, so.ExternalDataDir, externals, ort.GetVersion(), r.device.String())
	entry := filepath.Join(gc.Dir, key)
	if sess, err := r.loadCachedGraph(entry, inNames, outSel); err == nil {
		touch(entry)
		return sess, nil
	}

	// A miss: write into a hidden folder, then rename it into place, so a reader never sees
	// half an entry and two processes writing the same key do not corrupt each other.
	if err := os.MkdirAll(gc.Dir, 0o755); err != nil {
		return ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outSel, opts)
	}
	tmp, err := os.MkdirTemp(gc.Dir, ".write-")
	if err != nil {
		return ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outSel, opts)
	}
	saving := errors.Join(
		opts.SetOptimizedModelFilePath(filepath.Join(tmp, graphFile)),
		opts.AddSessionConfigEntry("session.optimized_model_external_initializers_file_name", weightsFile),
		opts.AddSessionConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", "1024"),
		// Weights as the CPU kernels repack them (MatMul, Conv), so a warm start skips that too.
		opts.AddSessionConfigEntry("session.save_external_prepacked_constant_initializers", "1"),
	)
	if saving != nil {
		os.RemoveAll(tmp)
		return ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outSel, opts)
	}
	if gc.OnWrite != nil {
		gc.OnWrite(size)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outSel, opts)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	meta := GraphCacheEntry{Key: key, Model: so.ExternalDataDir, Runtime: ort.GetVersion(), Device: r.device.String(), Created: time.Now()}
	if writeMeta(tmp, meta) != nil || os.Rename(tmp, entry) != nil {
		os.RemoveAll(tmp)
		return sess, nil
	}
	max := gc.MaxBytes
	if max <= 0 {
		max = DefaultGraphCacheBytes
	}
	_, _ = TrimGraphCache(gc.Dir, max)
	return sess, nil
}

// loadCachedGraph opens a cache entry's optimized graph with graph optimization off: ONNX
// Runtime already applied it before saving.
func (r *Runtime) loadCachedGraph(entry string, inNames, outSel []string) (*ort.DynamicAdvancedSession, error) {
	if _, err := os.Stat(filepath.Join(entry, metaFile)); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(entry, graphFile))
	if err != nil {
		return nil, err
	}
	opts, err := r.sessionOptions(SessionOptions{ExternalDataDir: entry})
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, inNames, outSel, opts)
	if err != nil {
		// An entry the runtime cannot read (truncated, or from an incompatible build that
		// slipped past the key) is useless: drop it so the next load writes a good one.
		os.RemoveAll(entry)
		return nil, err
	}
	return sess, nil
}

// externalLocations lists the distinct external-data files the model's initializers use.
func externalLocations(m *onnxpb.ModelProto) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range m.GetGraph().GetInitializer() {
		if !onnx.IsExternal(t) {
			continue
		}
		info, err := onnx.External(t)
		if err != nil || seen[info.Location] {
			continue
		}
		seen[info.Location] = true
		out = append(out, info.Location)
	}
	return out
}
