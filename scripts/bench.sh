#!/usr/bin/env bash
# Performance, each number beside a reference measured in the same run on this machine:
#   engine per-run overhead       vs  onnxruntime_go called directly on the same graph
#   AAS attention rate per layer  vs  the machine's fp32 MatMul rate (ONNX Runtime)
#   built-in model first score    vs  the 1 s budget
# Graphics encoders against img2sixel: scripts/bench-graphics.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "running benchmarks (a few minutes)..." >&2
go test ./engine/ -run '^$' -bench '^BenchmarkRun(Tiny)?$' -benchtime 1s -count 8 >>"$out"
go test ./features/ -run '^$' -bench '^Benchmark(MatMul|Attention)$' -benchtime 3x >>"$out"
go test ./features/builtin/ -run '^$' -bench 'BuildAndScorePair' -benchtime 5x >>"$out"

awk '
function least(arr, n,   i, m) { m = arr[1]; for (i = 2; i <= n; i++) if (arr[i] < m) m = arr[i]; return m }
function metric(name,   i) { for (i = 1; i <= NF; i++) if ($i == name) return $(i - 1); return "" }
/^BenchmarkRun-/ { e[++ne] = metric("engine-ns/run"); d[++nd] = metric("direct-ns/run") }
/^BenchmarkRunTiny-/ { te[++nte] = metric("engine-ns/run"); td[++ntd] = metric("direct-ns/run") }
/^BenchmarkMatMul/ { for (i = 1; i <= NF; i++) if ($i == "GFLOP/s") mm = $(i - 1) }
/^BenchmarkAttention\/ort/ { name = $1; sub(/^BenchmarkAttention\/ort\//, "", name); sub(/-[0-9]+$/, "", name); for (i = 1; i <= NF; i++) if ($i == "GFLOP/s") { rate[name] = $(i - 1); ms[name] = $3 / 1e6; order[++no] = name } }
/^BenchmarkAttention\/go/ { name = $1; sub(/^BenchmarkAttention\/go\//, "", name); sub(/-[0-9]+$/, "", name); goms[name] = $3 / 1e6 }
/^BenchmarkBuildAndScorePair/ { first = $3 / 1e6 }
END {
  me = least(e, ne); md = least(d, nd); mte = least(te, nte); mtd = least(td, ntd)
  printf "\nengine per-run overhead (engine and direct runs alternate; fastest mean of %d benchmarks)\n", ne
  printf "  %-34s %10s %10s %10s\n", "graph", "engine", "direct", "overhead"
  printf "  %-34s %8.1f us %8.1f us %+9.1f %%\n", "self-attention 256 tokens x 64", me / 1e3, md / 1e3, 100 * (me - md) / md
  printf "  %-34s %8.1f us %8.1f us %+8.1f us\n", "one Add of 8 floats (overhead only)", mte / 1e3, mtd / 1e3, (mte - mtd) / 1e3
  printf "  target: under 5 %% of a run\n"
  printf "\nAAS attention (4 calls per layer) vs fp32 MatMul %.1f GFLOP/s (1024^3, ONNX Runtime)\n", mm
  printf "  %-14s %10s %10s %12s %10s\n", "layer", "ort ms", "go ms", "GFLOP/s", "of MatMul"
  for (i = 1; i <= no; i++) { n = order[i]; g = (n in goms) ? sprintf("%.1f", goms[n]) : "-"; printf "  %-14s %10.1f %10s %12.1f %9.0f%%\n", n, ms[n], g, rate[n], 100 * rate[n] / mm }
  printf "\nbuilt-in model: build + extract a 256 px pair + AAS at all layers: %.0f ms (budget 1000 ms)\n", first
}' "$out"
