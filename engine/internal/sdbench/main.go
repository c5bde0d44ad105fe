//go:build cgo

// Command sdbench is scripts/bench-sd.sh's helper: it writes a full-size Stable Diffusion
// 1.5-shaped folder with random weights, and measures ONNX Runtime called directly on it
// (session creation and one forward per graph) and through diffsim's engine with and without
// the optimized-graph cache. It lives under engine/ because only engine/ may import
// onnxruntime_go. Each measurement runs in its own process, so peak RSS is per measurement.
//
//	sdbench gen DIR                    write DIR/{unet,vae_encoder,text_encoder}, model_index.json
//	sdbench raw DIR SIZE               onnxruntime_go directly, all three graphs held together
//	sdbench engine DIR CACHEDIR        the U-Net through engine.Runtime with the graph cache
//	sdbench session DIR SIZE CACHEDIR A B   diffsim's score in phases, with time and memory after each
//	sdbench gen-vit DIR                a CLIP ViT-B/16-sized vision encoder in DIR/onnx/
//	sdbench prune FILE LAYER SIZE      FILE's graph cut down to LAYER (or "full"): session, forward, peak
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/engine/onnx/onnxpb"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/features/tapped"
	"github.com/diffsim/diffsim/session"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sdbench gen DIR | raw DIR SIZE | engine DIR CACHEDIR")
		return 2
	}
	var err error
	switch args[0] {
	case "gen":
		err = gen(args[1])
	case "raw":
		size := 512
		if len(args) > 2 {
			size, err = strconv.Atoi(args[2])
		}
		if err == nil {
			err = raw(args[1], size)
		}
	case "gen-vit":
		err = genViT(args[1])
	case "prune":
		if len(args) < 4 {
			err = fmt.Errorf("prune FILE LAYER SIZE")
		} else {
			size, _ := strconv.Atoi(args[3])
			err = prune(args[1], args[2], size)
		}
	case "session":
		if len(args) < 5 {
			err = fmt.Errorf("session DIR SIZE CACHEDIR IMAGE_A IMAGE_B")
		} else {
			size, _ := strconv.Atoi(args[2])
			err = phases(args[1], size, args[3], args[4], args[5])
		}
	case "engine":
		if len(args) < 3 {
			err = fmt.Errorf("engine DIR CACHEDIR")
		} else {
			err = viaEngine(args[1], args[2])
		}
	default:
		err = fmt.Errorf("unknown step %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdbench:", err)
		return 1
	}
	return 0
}

// gen writes the folder. The U-Net is the test generator's full-size SD 1.5 structure with
// its external weights filled with seeded random values scaled by fan-in (so activations stay
// finite and no denormals slow the run); the text encoder is CLIP ViT-L/14's text tower size
// (12 layers, width 768, 49408 tokens) and the VAE encoder AutoencoderKL's whole encoder, both
// with their weights inside model.onnx as optimum writes them.
func gen(dir string) error {
	unetDir := filepath.Join(dir, "unet")
	if err := os.MkdirAll(unetDir, 0o755); err != nil {
		return err
	}
	uo := testgraphs.SD15()
	uo.Full = true
	unet, _ := testgraphs.SDUNet(uo)
	n, err := fillWeights(unet, unetDir)
	if err != nil {
		return err
	}
	if err := onnx.WriteFile(filepath.Join(unetDir, "model.onnx"), unet); err != nil {
		return err
	}
	fmt.Printf("unet: %d parameters, %.2f GB of external weights\n", n/4, float64(n)/1e9)

	// optimum's layout: the text encoder's and the VAE encoder's weights inside their
	// model.onnx; the text encoder takes int32 ids.
	text, _ := testgraphs.TextEncoder(testgraphs.TextOptions{Batch: 1, Tokens: 77, Channels: 768, Heads: 12, Layers: 12, Vocab: 49408, Seed: 9, Int32IDs: true})
	textDir := filepath.Join(dir, "text_encoder")
	if err := os.MkdirAll(textDir, 0o755); err != nil {
		return err
	}
	if err := onnx.WriteFile(filepath.Join(textDir, "model.onnx"), text); err != nil {
		return err
	}
	vo := testgraphs.TinyVAE()
	vo.Channels, vo.Full = 512, true
	vae, _ := testgraphs.VAEEncoder(vo)
	vaeDir := filepath.Join(dir, "vae_encoder")
	if err := os.MkdirAll(vaeDir, 0o755); err != nil {
		return err
	}
	if err := onnx.WriteFile(filepath.Join(vaeDir, "model.onnx"), vae); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(`{"_class_name": "StableDiffusionPipeline"}`), 0o644)
}

// fillWeights writes the random values the structure-only graph declares in weights.pb.
func fillWeights(m *onnxpb.ModelProto, dir string) (int64, error) {
	f, err := os.Create(filepath.Join(dir, "weights.pb"))
	if err != nil {
		return 0, err
	}
	r := rand.New(rand.NewPCG(1, 5))
	var total int64
	buf := make([]byte, 0, 1<<20)
	for _, t := range m.GetGraph().GetInitializer() {
		if !onnx.IsExternal(t) {
			continue
		}
		info, err := onnx.External(t)
		if err != nil {
			f.Close()
			return 0, err
		}
		if info.Offset != total {
			f.Close()
			return 0, fmt.Errorf("tensor %s at offset %d, expected %d", t.GetName(), info.Offset, total)
		}
		dims := t.GetDims()
		fan := int64(1)
		switch len(dims) {
		case 2:
			fan = dims[0]
		case 4:
			fan = dims[1] * dims[2] * dims[3]
		}
		a := float32(math.Sqrt(3 / float64(fan)))
		if len(dims) == 1 {
			a = 0.1
		}
		for left := info.Length; left > 0; {
			buf = buf[:0]
			for ; left > 0 && len(buf) < cap(buf); left -= 4 {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(a*(2*r.Float32()-1)))
			}
			if _, err := f.Write(buf); err != nil {
				f.Close()
				return 0, err
			}
		}
		total += info.Length
	}
	return total, f.Close()
}

// graphs are the three parts diffsim loads, with the inputs one score feeds them: the VAE
// encodes both images at once, the text encoder embeds the empty prompt once, the U-Net runs
// A and B as a batch of two. Input types and ranks are the graphs' own (optimum's text
// encoder takes int32 ids, others int64; a timestep may be float32 or int64).
func graphs(dir string, size int) ([]part, error) {
	lat := int64(size / 8)
	ids := make([]int64, 77)
	ids[0] = 49406
	for i := 1; i < 77; i++ {
		ids[i] = 49407
	}
	parts := []part{
		{name: "text_encoder", path: filepath.Join(dir, "text_encoder", "model.onnx")},
		{name: "vae_encoder", path: filepath.Join(dir, "vae_encoder", "model.onnx")},
		{name: "unet", path: filepath.Join(dir, "unet", "model.onnx")},
	}
	for i := range parts {
		p := &parts[i]
		ins, outs, err := ioInfo(p.path)
		if err != nil {
			return nil, err
		}
		for _, o := range outs {
			p.out = append(p.out, o.Name)
		}
		for _, in := range ins {
			p.in = append(p.in, in.Name)
			var v ort.Value
			switch {
			case in.Name == "input_ids" && in.Type == engine.Int32:
				i32 := make([]int32, len(ids))
				for k, x := range ids {
					i32[k] = int32(x)
				}
				v, err = ort.NewTensor(ort.NewShape(1, 77), i32)
			case in.Name == "input_ids":
				v, err = ort.NewTensor(ort.NewShape(1, 77), ids)
			case p.name == "vae_encoder":
				v, err = ort.NewTensor(ort.NewShape(2, 3, int64(size), int64(size)), random(2*3*size*size))
			case in.Name == "sample":
				v, err = ort.NewTensor(ort.NewShape(2, 4, lat, lat), random(int(2*4*lat*lat)))
			case in.Name == "timestep" && in.Type == engine.Int64:
				v, err = ort.NewTensor(ort.NewShape(2), []int64{401, 401})
			case in.Name == "timestep":
				v, err = ort.NewTensor(ort.NewShape(2), []float32{401, 401})
			case in.Name == "encoder_hidden_states":
				v, err = ort.NewTensor(ort.NewShape(2, 77, 768), random(2*77*768))
			default:
				err = fmt.Errorf("%s: input %v is not one sdbench feeds", p.path, in)
			}
			if err != nil {
				return nil, err
			}
			p.inputs = append(p.inputs, v)
		}
	}
	return parts, nil
}

type part struct {
	name, path string
	in, out    []string
	inputs     []ort.Value
}

func must[T ort.TensorData](v *ort.Tensor[T], err error) ort.Value {
	if err != nil {
		panic(err)
	}
	return v
}

func random(n int) []float32 {
	r := rand.New(rand.NewPCG(2, 2))
	out := make([]float32, n)
	for i := range out {
		out[i] = r.Float32()*2 - 1
	}
	return out
}

// raw creates the three sessions with onnxruntime_go's defaults (as a user calling ONNX
// Runtime directly would; intra-op threads as diffsim sets them), holds them together, and
// runs one forward each.
func raw(dir string, size int) error {
	lib, _, err := engine.FindLibrary("")
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return err
	}
	defer ort.DestroyEnvironment()
	var sessions []*ort.DynamicAdvancedSession
	defer func() {
		for _, s := range sessions {
			s.Destroy()
		}
	}()
	parts, err := graphs(dir, size)
	if err != nil {
		return err
	}
	for _, p := range parts {
		in, out := p.in, p.out
		opts, err := ort.NewSessionOptions()
		if err != nil {
			return err
		}
		opts.SetIntraOpNumThreads(0)
		start := time.Now()
		s, err := ort.NewDynamicAdvancedSession(p.path, in, out, opts)
		opts.Destroy()
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		create := time.Since(start)
		sessions = append(sessions, s)
		outs := make([]ort.Value, len(out))
		start = time.Now()
		if err := s.Run(p.inputs, outs); err != nil {
			return fmt.Errorf("%s run: %w", p.name, err)
		}
		forward := time.Since(start)
		for _, o := range outs {
			o.Destroy()
		}
		fmt.Printf("raw %s %d px: session %.2f s, forward %.2f s\n", p.name, size, create.Seconds(), forward.Seconds())
	}
	return nil
}

// viaEngine loads the U-Net through the engine with the graph cache in cachedir and reports
// the session creation time and whether the cache had it.
func viaEngine(dir, cachedir string) error {
	had, _ := engine.ListGraphCache(cachedir)
	var gc *engine.GraphCache
	if cachedir != "-" {
		gc = &engine.GraphCache{Dir: cachedir}
	}
	rt, err := engine.Open(engine.Options{Device: "cpu", GraphCache: gc})
	if err != nil {
		return err
	}
	defer rt.Close()
	start := time.Now()
	s, err := rt.LoadFile(filepath.Join(dir, "unet", "model.onnx"), engine.SessionOptions{})
	if err != nil {
		return err
	}
	create := time.Since(start)
	defer s.Close()
	state := "cold (cache empty)"
	switch {
	case gc == nil:
		state = "no cache"
	case len(had) > 0:
		state = "warm (cached optimized graph)"
	}
	lat := int64(32)
	start = time.Now()
	_, err = s.Run(context.Background(),
		engine.F32("sample", []int64{2, 4, lat, lat}, random(int(2*4*lat*lat))),
		engine.F32("timestep", []int64{2}, []float32{401, 401}),
		engine.F32("encoder_hidden_states", []int64{2, 77, 768}, random(2*77*768)))
	if err != nil {
		return err
	}
	fmt.Printf("engine unet %s: session %.2f s, forward 256 px %.2f s\n", state, create.Seconds(), time.Since(start).Seconds())
	return nil
}

// phases runs what `diffsim score` runs, through the session package, and prints the time and
// the process's resident and peak memory after each phase, to show where they go.
func phases(dir string, size int, cachedir, a, b string) error {
	ctx := context.Background()
	var gc *engine.GraphCache
	if cachedir != "-" {
		gc = &engine.GraphCache{Dir: cachedir}
	}
	mark := time.Now()
	step := func(what string) {
		rss, hwm := memory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("phase %-28s %6.2f s   rss %5.2f GB   peak %5.2f GB   Go heap %5.2f GB (of %5.2f GB)\n", what, time.Since(mark).Seconds(), rss, hwm, float64(ms.HeapInuse)/1e9, float64(ms.HeapSys-ms.HeapReleased)/1e9)
		mark = time.Now()
	}
	spec := api.DefaultSpec()
	spec.Model, spec.Size, spec.Device = dir, size, "cpu"
	s, err := session.Open(ctx, session.Options{Spec: spec, GraphCache: gc, Families: families.All()})
	if err != nil {
		return err
	}
	defer s.Close()
	step("open (U-Net found, prompt)")
	ia, err := s.Load(a)
	if err != nil {
		return err
	}
	ib, err := s.Load(b)
	if err != nil {
		return err
	}
	step("load images")
	info := s.Info()
	if err := s.Prefetch(ctx, info.DefaultT, ia, ib); err != nil {
		return err
	}
	step("features (VAE + U-Net)")
	r, err := s.Score(ctx, api.Request{A: ia, B: ib, Layer: info.DefaultLayer, T: info.DefaultT, Metric: api.AAS, Token: -1})
	if err != nil {
		return err
	}
	step("AAS at the default layer")
	fmt.Printf("score %.17g at %s\n", r.Score, info.Layers[info.DefaultLayer].Label())
	return nil
}

// memory reads VmRSS and VmHWM (peak) in GB from /proc/self/status.
func memory() (rss, hwm float64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1e6
		case "VmHWM:":
			hwm = kb / 1e6
		}
	}
	return rss, hwm
}

// ioInfo reads a graph's inputs and outputs from its structure alone (no weight is copied
// into Go memory: the raw run holds what ONNX Runtime holds): onnxruntime_go's
// GetInputOutputInfo would create a whole extra session to answer.
func ioInfo(path string) (in, out []engine.IOInfo, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := onnx.ParseStructure(data)
	if err != nil {
		return nil, nil, err
	}
	in, out = tapped.GraphIO(m)
	return in, out, nil
}
