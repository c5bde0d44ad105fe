#!/usr/bin/env bash
# Stable Diffusion 1.5 at full size, in one run (not a CI test; about 10–20 minutes on 2 cores):
#   ONNX Runtime called directly: session creation + one forward for each of the three graphs
#   diffsim score at 256 and 512 px: whole-process wall time and peak RSS, against the above
#   the optimized-graph cache: cold (written) vs warm (read) session creation
#   diffsim serve: a score answered by a warm server
# It writes a full-size SD 1.5-shaped folder with seeded random weights to a temporary folder,
# laid out as optimum exports it (the project's generator with UNetOptions.Full: 700 M U-Net
# parameters, 2.8 GB of external weights, about 81 % of SD 1.5's 860 M; a CLIP ViT-L/14-sized
# text encoder taking int32 ids and AutoencoderKL's whole VAE encoder, both with their weights
# inside model.onnx) and deletes it after (BENCH_SD_KEEP=1 keeps it). It needs about 12 GB of
# disk there ($BENCH_SD_DIR, else /tmp). `score` runs its default layer (Up0) on the U-Net
# cut down to it; the second score on the same images finds their VAE latents and the empty
# prompt's embedding kept from the first (DIFFSIM_CACHE), so it never opens those two graphs.
# Every measured process runs alone (never two SD-size processes at once); peak RSS comes
# from /usr/bin/time. Numbers from a shared machine are noisy: the load average is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
[ -x /usr/bin/time ] || { echo "bench-sd: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

tmp=${BENCH_SD_DIR:-$(mktemp -d /tmp/diffsim-bench-sd.XXXXXX)}
mkdir -p "$tmp"
avail=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "$avail" -lt 12 ]; then
	echo "bench-sd: $tmp has ${avail} GB free; the model and the graph cache need about 12 GB" >&2
	exit 1
fi
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	if [ -n "${BENCH_SD_KEEP:-}" ]; then echo "bench-sd: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building..." >&2
go build -o "$tmp/diffsim" .
go build -o "$tmp/sdbench" ./engine/internal/sdbench
echo "writing the model to $tmp/sd15..." >&2
"$tmp/sdbench" gen "$tmp/sd15" | tee "$tmp/gen.txt" >&2
A=$PWD/testdata/samples/grass.png
B=$PWD/testdata/samples/gravel.png

# measure NAME CMD...: runs CMD alone under /usr/bin/time; keeps its output in $tmp/NAME.out
# and "wall_s peak_kb" in $tmp/NAME.time.
measure() {
	local name=$1
	shift
	echo "  $name (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
	/usr/bin/time -f '%e %M' -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || {
		echo "bench-sd: $name failed:" >&2
		cat "$tmp/$name.err" >&2
		exit 1
	}
}

score=("$tmp/diffsim" score "$A" "$B" --model "$tmp/sd15" --device cpu --json --quiet)

echo "measuring (each step alone):" >&2
for size in 256 512; do
	measure "raw$size" "$tmp/sdbench" raw "$tmp/sd15" "$size"
	# Nothing kept from an earlier run either (latents, the prompt's embedding): the whole
	# work, as the raw run does it.
	DIFFSIM_CACHE=$tmp/cache-off DIFFSIM_GRAPH_CACHE=off DIFFSIM_MEMO=off measure "nocache$size" "${score[@]}" --size "$size" --no-server
done
rm -rf "$tmp/cache"
DIFFSIM_CACHE=$tmp/cache measure cold256 "${score[@]}" --size 256 --no-server
DIFFSIM_CACHE=$tmp/cache measure warm256 "${score[@]}" --size 256 --no-server
DIFFSIM_CACHE=$tmp/cache measure warm512 "${score[@]}" --size 512 --no-server
rm -rf "$tmp/engine-cache"
measure enginecold "$tmp/sdbench" engine "$tmp/sd15" "$tmp/engine-cache"
measure enginewarm "$tmp/sdbench" engine "$tmp/sd15" "$tmp/engine-cache"

# A warm server: the first score loads the model (warm graph cache), the second (another t)
# runs one forward, the third (same t) none.
sock=$tmp/serve.sock
DIFFSIM_CACHE=$tmp/cache "$tmp/diffsim" serve --socket "$sock" --quiet 2>"$tmp/serve.err" &
server=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
DIFFSIM_SOCKET=$sock measure serve1 "${score[@]}" --size 256 --t 501
DIFFSIM_SOCKET=$sock measure serve2 "${score[@]}" --size 256 --t 601
DIFFSIM_SOCKET=$sock measure serve3 "${score[@]}" --size 256 --t 601
kill "$server"
wait "$server" 2>/dev/null || true
server=

# Where diffsim's time and memory go at 512 px: the same work as score, phase by phase.
DIFFSIM_MEMO=off measure phases512 "$tmp/sdbench" session "$tmp/sd15" 512 - "$A" "$B"

# The same score (t = 501, the default), whichever way it was computed.
same=$(for n in nocache256 cold256 warm256 serve1; do
	sed -n 's/.*"score":\([^,]*\),.*/\1/p' "$tmp/$n.out"
done | sort -u | wc -l)

awk -v dir="$tmp" -v same="$same" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" -v cores="$(nproc)" -v mem="$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" '
function rd(name,   f, line, a) { f = dir "/" name ".time"; getline line < f; close(f); split(line, a, " "); wall[name] = a[1]; rss[name] = a[2] / 1048576 }
function rawsum(name,   f, line, s, n, a) { f = dir "/" name ".out"; s = 0
	while ((getline line < f) > 0) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (a[i] == "session" || a[i] == "forward") { v = a[i + 1]; sub(/,$/, "", v); s += v } }
	close(f); return s }
function part(name, graph,   f, line, s, n, a, i, v) { f = dir "/" name ".out"; s = 0
	while ((getline line < f) > 0) { n = split(line, a, " "); if (a[2] != graph) continue
		for (i = 1; i <= n; i++) if (a[i] == "session" || a[i] == "forward") { v = a[i + 1]; sub(/,$/, "", v); s += v } }
	close(f); return s }
function eng(name, what,   f, line, a, n, i) { f = dir "/" name ".out"; getline line < f; close(f); n = split(line, a, " ")
	for (i = 1; i <= n; i++) if (a[i] == what) { v = a[i + 1]; sub(/,$/, "", v); return v } }
BEGIN {
	split("raw256 raw512 nocache256 nocache512 cold256 warm256 warm512 enginecold enginewarm serve1 serve2 serve3 phases512", names, " ")
	for (i in names) rd(names[i])
	while ((getline line < (dir "/gen.txt")) > 0) model = line
	printf "\nStable Diffusion 1.5-shaped model, random weights (%s)\n", model
	printf "machine: %d cores, %d GB; load average at the end %s (shared: other work ran meanwhile)\n\n", cores, mem, load
	printf "%-58s %9s %11s\n", "", "wall s", "peak RSS GB"
	for (s = 256; s <= 512; s += 256) {
		r = "raw" s; n = "nocache" s
		printf "%-58s %9.1f %11.2f\n", "ONNX Runtime directly, 3 sessions + 3 forwards, " s " px", wall[r], rss[r]
		printf "%-58s %9.1f %11s\n", "  of which session creation + forward (sum)", rawsum(r), ""
		printf "%-58s %9.1f %11s\n", "  of which the VAE encoder (session + forward)", part(r, "vae_encoder"), ""
		printf "%-58s %9.1f %11.2f\n", "diffsim score " s " px, no graph cache", wall[n], rss[n]
		printf "%-58s %9.2f %11.2f   (targets 1.10, 1.20)\n", "  ratio to ONNX Runtime directly", wall[n] / wall[r], rss[n] / rss[r]
	}
	printf "%-58s %9.1f %11.2f\n", "diffsim score 256 px, graph cache cold (written)", wall["cold256"], rss["cold256"]
	printf "%-58s %9.1f %11.2f\n", "diffsim score 256 px, graph cache warm", wall["warm256"], rss["warm256"]
	printf "%-58s %9.1f %11.2f\n", "diffsim score 512 px, graph cache warm", wall["warm512"], rss["warm512"]
	printf "%-58s %9.2f\n", "  warm / uncached start, 256 px (whole process)", wall["warm256"] / wall["nocache256"]
	printf "%-58s %9.2f\n", "  second score / first, same images (latents kept)", wall["warm256"] / wall["cold256"]
	c = eng("enginecold", "session"); w = eng("enginewarm", "session")
	printf "\nU-Net session creation through the engine: cold %.1f s (writes the cache), warm %.1f s: %.2f (target 0.50)\n", c, w, w / c
	printf "  first forward at 256 px after it: cold %.1f s, warm %.1f s\n", eng("enginecold", "px"), eng("enginewarm", "px")
	printf "\ndiffsim serve (256 px, same model):\n"
	printf "  first score (loads the model)        %6.1f s\n", wall["serve1"]
	printf "  score at a new t (one forward)       %6.1f s   (client peak RSS %.0f MB)\n", wall["serve2"], rss["serve2"] * 1024
	printf "  score again (features cached)        %6.2f s\n", wall["serve3"]
	printf "\nscore at 256 px without cache, cold, warm and served: %s\n", (same == 1) ? "identical" : "DIFFERENT (" same " values)"
	printf "\ndiffsim score at 512 px, phase by phase (no graph cache):\n"
	f = dir "/phases512.out"
	while ((getline line < f) > 0) print "  " line
	printf "peak RSS %.2f GB, wall %.1f s\n", rss["phases512"], wall["phases512"]
}'
