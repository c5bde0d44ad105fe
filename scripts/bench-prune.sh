#!/usr/bin/env bash
# Pruned graphs against the whole graph, at full size, in one run (not a CI test; about 15–25
# minutes on 2 cores, 8 GB of memory at the peak, 4 GB of disk):
#   the SD 1.5-sized U-Net that bench-sd.sh makes, at 512 px (BENCH_PRUNE_SIZE), cut down to
#   Down0, Down2, Mid, Up0 and Up2, and whole;
#   a CLIP ViT-B/16-sized vision encoder at 224 px cut down to layers 3, 6 and 12, and whole:
# per graph, the session creation, one forward (batch 2, the faster of two runs) and the
# process's peak resident memory after the first run (one score's), each in its own process,
# and the ratios to the whole graph. Weights are
# random (seeded): times and memory are a real model's, scores are not. Numbers from a shared
# machine are noisy: the load average is printed before each step.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
size=${BENCH_PRUNE_SIZE:-512}

tmp=${BENCH_PRUNE_DIR:-$(mktemp -d /tmp/diffsim-bench-prune.XXXXXX)}
mkdir -p "$tmp"
avail=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "$avail" -lt 4 ]; then
	echo "bench-prune: $tmp has ${avail} GB free; the models need about 4 GB" >&2
	exit 1
fi
cleanup() {
	if [ -n "${BENCH_PRUNE_KEEP:-}" ]; then echo "bench-prune: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building..." >&2
go build -o "$tmp/sdbench" ./engine/internal/sdbench
if [ ! -f "$tmp/sd15/unet/model.onnx" ]; then
	echo "writing the models to $tmp..." >&2
	"$tmp/sdbench" gen "$tmp/sd15" >&2
	"$tmp/sdbench" gen-vit "$tmp/vit" >&2
fi

# measure FILE LAYER SIZE: one process; prints "graph layer session forward peak".
measure() {
	echo "  $(basename "$(dirname "$1")") $2 (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
	"$tmp/sdbench" prune "$1" "$2" "$3" |
		awk '/^prune/ { gsub(/,/, ""); print $2, $3, $7, $10, $13 }'
}

echo "measuring (each step alone):" >&2
{
	for layer in full Down0 Down2 Mid Up0 Up2; do measure "$tmp/sd15/unet/model.onnx" "$layer" "$size"; done
	for layer in full 3 6 12; do measure "$tmp/vit/onnx/vision_model.onnx" "$layer" 224; done
} >"$tmp/results.txt"

echo
echo "Pruned graphs against the whole graph (U-Net at $size px, ViT at 224 px, batch 2, CPU):"
echo
awk '
	$2 == "full" { full[$1] = $4; peak[$1] = $5 }
	{ rows[NR] = $0 }
	END {
		print "| graph | layer | session | forward | forward vs whole | peak RSS | peak vs whole |"
		print "|---|---|---|---|---|---|---|"
		for (i = 1; i <= NR; i++) {
			split(rows[i], f, " ")
			name = f[1] == "onnx" ? "ViT-B/16" : "U-Net"
			layer = f[2] == "full" ? "whole graph" : f[2]
			printf "| %s | %s | %.1f s | %.2f s | %.2f× | %.2f GB | %.2f× |\n", name, layer, f[3], f[4], f[4] / full[f[1]], f[5], f[5] / peak[f[1]]
		}
	}' "$tmp/results.txt"
