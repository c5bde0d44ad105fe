//go:build cgo

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/tapped"
)

// genViT writes a CLIP ViT-B/16-sized vision encoder (12 layers of width 768, 12 heads,
// 16-px patches at 224 px: 197 tokens) with random weights, in the transformers.js layout.
func genViT(dir string) error {
	d := filepath.Join(dir, "onnx")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	m, _ := testgraphs.CLIPVision(testgraphs.CLIPVisionOptions{Width: 768, Heads: 12, Layers: 12, Patch: 16})
	if err := onnx.MoveToExternal(m, d, "vision_model.onnx_data", 1024); err != nil {
		return err
	}
	if err := onnx.WriteFile(filepath.Join(d, "vision_model.onnx"), m); err != nil {
		return err
	}
	fmt.Printf("vit: CLIP ViT-B/16-sized vision encoder at %s\n", d)
	return nil
}

// prune measures one graph (a U-Net or a ViT file) cut down to one layer, or whole ("full"):
// the first run (session creation and a forward), a second run (the forward alone), and the
// process's peak memory. The layer is a short name (Down0 … Up2) or, for a ViT, a 1-based
// encoder layer number.
func prune(file, layer string, size int) error {
	rt, err := engine.Open(engine.Options{Device: "cpu"})
	if err != nil {
		return err
	}
	defer rt.Close()
	vit := filepath.Base(filepath.Dir(file)) == "onnx"
	in := func(declared []engine.IOInfo, batch int) map[string][]int64 {
		b, lat := int64(batch), int64(size/8)
		if vit {
			return map[string][]int64{"pixel_values": {b, 3, 224, 224}}
		}
		ctx := int64(768)
		for _, d := range declared {
			if d.Name == "encoder_hidden_states" && len(d.Shape) == 3 && d.Shape[2] > 0 {
				ctx = d.Shape[2]
			}
		}
		return map[string][]int64{"sample": {b, 4, lat, lat}, "timestep": {b}, "encoder_hidden_states": {b, 77, ctx}}
	}
	tm, err := tapped.Open(rt, file, tapped.Options{Inputs: in})
	if err != nil {
		return err
	}
	defer tm.Close()
	var layers []int
	if layer != "full" {
		i := slices.IndexFunc(tm.Layers, func(l attention.Layer) bool { return l.Short == layer })
		if n, err := strconv.Atoi(layer); err == nil && vit {
			i = n - 1
		}
		if i < 0 || i >= len(tm.Layers) {
			return fmt.Errorf("%s: no layer %q", file, layer)
		}
		layers = []int{i}
	}
	var inputs []engine.Tensor
	for name, shape := range in(tm.Inputs(), 2) {
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		switch {
		case name == "timestep" && slices.ContainsFunc(tm.Inputs(), func(i engine.IOInfo) bool { return i.Name == name && i.Type == engine.Int64 }):
			inputs = append(inputs, engine.I64(name, shape, []int64{401, 401}))
		case name == "timestep":
			inputs = append(inputs, engine.F32(name, shape, []float32{401, 401}))
		default:
			inputs = append(inputs, engine.F32(name, shape, random(n)))
		}
	}
	ctx := context.Background()
	start := time.Now()
	if err := tm.Prepare(layers); err != nil {
		return err
	}
	create := time.Since(start)
	// The peak is the first run's, as one score's: the runtime plans its memory on the first
	// run and allocates that plan anew for the second, which would count its arena twice. The
	// forward is the faster of two runs (the machine is shared).
	var times [2]time.Duration
	var hwm float64
	for k := range times {
		start := time.Now()
		if layers == nil {
			_, err = tm.Run(ctx, size/8, size/8, inputs...)
		} else {
			_, err = tm.RunLayers(ctx, layers, size/8, size/8, inputs...)
		}
		if err != nil {
			return err
		}
		times[k] = time.Since(start)
		if k == 0 {
			_, hwm = memory()
		}
	}
	fmt.Printf("prune %s %s %d px: session %.2f s, forward %.2f s, peak %.2f GB\n", filepath.Base(filepath.Dir(file)), layer, size,
		create.Seconds(), min(times[0], times[1]).Seconds(), hwm)
	return nil
}
