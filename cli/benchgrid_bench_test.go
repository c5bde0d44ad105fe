package cli

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/diffsim/diffsim/engine/attention/testgraphs"
)

// BenchmarkBenchGrid is scripts/bench-grid.sh in one process, for profiles: on the built-in
// model (256 px) and the miniature SD (128 px), a grid over every layer × t = 101, 501 × three
// metrics, against one single-cell run per t at the model's default layer (the reference
// issue 25's target is stated against), on bench synth's 4 styles × 4 contents as the triplet
// layout (48 decisions).
//
//	go test ./cli -run '^$' -bench BenchGrid -benchtime 3x -cpuprofile cpu.out
func BenchmarkBenchGrid(b *testing.B) {
	tmp := b.TempDir()
	b.Setenv("DIFFSIM_SOCKET", filepath.Join(tmp, "none.sock"))
	b.Setenv("DIFFSIM_CACHE", filepath.Join(tmp, "cache"))
	data := filepath.Join(tmp, "synth")
	if code, _, stderr := runBench(b, "bench", "synth", data, "--styles", "4", "--contents", "4", "--quiet"); code != 0 {
		b.Fatalf("synth: exit %d: %s", code, stderr)
	}
	sd := filepath.Join(tmp, "tinysd")
	if err := testgraphs.WriteTinyDiffusers(sd); err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name, layer string
		flags       []string
	}{
		{"builtin", "medium", []string{"--size", "256"}},
		{"tinysd", "Up0", []string{"--model", sd, "--size", "128"}},
	} {
		for _, run := range []struct {
			name string
			args [][]string
		}{
			{"grid", [][]string{{"--layers", "all", "--t", "101,501", "--metric", "aas,cos,mse"}}},
			{"cell-per-t", [][]string{{"--layer", m.layer, "--t", "101"}, {"--layer", m.layer, "--t", "501"}}},
		} {
			b.Run(m.name+"/"+run.name, func(b *testing.B) {
				// the first load of a model optimizes its graph and caches it: not timed
				if code, _, stderr := runBench(b, append([]string{"bench", "triplet", data, "--no-server", "--quiet", "--t", "101", "--max", "1"}, m.flags...)...); code != 0 {
					b.Fatalf("warm-up: exit %d: %s", code, stderr)
				}
				for b.Loop() {
					for _, a := range run.args {
						args := append(append([]string{"bench", "triplet", data, "--no-server", "--quiet"}, m.flags...), a...)
						if code, _, stderr := runBench(b, args...); code != 0 {
							b.Fatalf("%v: exit %d: %s", args, code, stderr)
						}
					}
				}
			})
		}
	}
}

// runBench is runCmd for benchmarks.
func runBench(b *testing.B, args ...string) (int, string, string) {
	b.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(args, nil, &stdout, &stderr)
	skipWithoutRuntime(b, code, stderr.String())
	return code, stdout.String(), stderr.String()
}
