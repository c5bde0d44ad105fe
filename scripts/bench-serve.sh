#!/usr/bin/env bash
# Load on `diffsim serve`: CLIENTS concurrent clients over each transport (the Unix socket and
# HTTP on loopback) send `score` requests for DURATION, cycling through PAIRS pairs of the
# sample photographs at distinct timesteps; every answer is checked byte for byte against
# `diffsim score --json --no-server` for that pair (scripts fail on any difference). Then the
# memory bound: SEEDS requests with distinct seeds (each its own session) under
# --max-memory MAXMEM, with the resident set after them and the server's fixed overhead (its
# resident set after one model was loaded, used and unloaded).
#
#   scripts/bench-serve.sh                               # built-in model, 1 8 32 64 clients, 30 s
#   CLIENTS="1 8" DURATION=10s scripts/bench-serve.sh
#   MODEL=sd15 SIZE=256 CLIENTS="1 4" scripts/bench-serve.sh
#   BIN=/path/to/other/diffsim scripts/bench-serve.sh    # another build's server, same clients
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
model=${MODEL:-builtin}
size=${SIZE:-0}
clients=${CLIENTS:-1 8 32 64}
duration=${DURATION:-30s}
seeds=${SEEDS:-40}
maxmem=${MAXMEM:-300MB}
dir=$(mktemp -d /tmp/diffsim-bench-serve.XXXXXX)
bin=${BIN:-$dir/diffsim}
[ -n "${BIN:-}" ] || go build -o "$bin" .
go build -o "$dir/servebench" ./session/serve/internal/servebench
server=
stop_server() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=
}
trap 'stop_server; rm -rf "$dir"' EXIT

# start_server FLAGS...: a server on $dir/s.sock and HTTP on a free loopback port ($http), waited for.
start_server() {
  : >"$dir/serve.err"
  "$bin" serve --socket "$dir/s.sock" --http 127.0.0.1:0 "$@" 2>>"$dir/serve.err" &
  server=$!
  for _ in $(seq 300); do
    http=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/serve.err" | head -1 | sed 's|http://||' || true)
    [ -n "$http" ] && curl -sf --unix-socket "$dir/s.sock" http://diffsim/v1/health >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "bench-serve: the server did not start: $(cat "$dir/serve.err")" >&2
  exit 1
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k/1024}'; }

# The reference: each pair scored by the command itself.
samples=$(pwd)/testdata/samples
pairs=("grass.png gravel.png 101" "brick.png grass.png 301" "chelsea.png coffee.png 501" "rocket.jpg astronaut.png 701")
: >"$dir/ref.jsonl"
for p in "${pairs[@]}"; do
  set -- $p
  "$bin" score "$samples/$1" "$samples/$2" --t "$3" --model "$model" --size "$size" --json --quiet --no-server >>"$dir/ref.jsonl"
done

echo "diffsim serve under load: model $model, $(wc -l <"$dir/ref.jsonl") pairs, $duration per row, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| clients | transport | req/s | p50 | p99 | RSS after | answers = --no-server |"
echo "|---|---|---|---|---|---|---|"
start_server
# Warm: the model loads once, the features of every pair are computed once; the rows then
# measure a warm server, as a long-running one is.
"$dir/servebench" -socket "$dir/s.sock" -clients 1 -duration 1s -ref "$dir/ref.jsonl" -model "$model" >/dev/null
for n in $clients; do
  for transport in unix http; do
    if [ "$transport" = unix ]; then target=(-socket "$dir/s.sock"); else target=(-http "$http"); fi
    out=$("$dir/servebench" "${target[@]}" -clients "$n" -duration "$duration" -ref "$dir/ref.jsonl" -model "$model") || { echo "bench-serve: $out" >&2; exit 1; }
    read -r _ reqs _ rps _ p50 _ p99 _ mism _ errs <<<"$out"
    same="all $reqs"
    [ "$mism" = 0 ] && [ "$errs" = 0 ] || same="$mism differ, $errs failed"
    echo "| $n | $transport | $rps | $p50 ms | $p99 ms | $(mib "$(rss_kib "$server")") | $same |"
  done
done
echo
echo "peak RSS of the server over the load: $(mib "$(hwm_kib "$server")")"
stop_server

# The memory bound, and the fixed overhead it does not count.
start_server --max-memory "$maxmem"
a=$samples/hubble_deep_field.jpg b=$samples/rocket.jpg
body() { printf '{"model":"%s","size":%s,"image_a":"%s","image_b":"%s","seed":%s,"keep_alive":"%s"}' "$model" "$size" "$a" "$b" "$1" "$2"; }
post() { curl -sf --unix-socket "$dir/s.sock" -H 'Content-Type: application/json' http://diffsim/v1/score -d "$1" >/dev/null; }
post "$(body 0 0)" # loaded, used, unloaded: what remains is the runtime's fixed overhead
overhead=$(rss_kib "$server")
for s in $(seq 1 "$seeds"); do post "$(body "$s" 5m)"; done
read -r n_models held_b max_b <<<"$("$dir/servebench" -socket "$dir/s.sock" -held)"
rss=$(rss_kib "$server")
echo
echo "memory bound: $seeds distinct seeds under --max-memory $maxmem ($model)"
echo
echo "| | |"
echo "|---|---|"
echo "| models loaded after the run | $n_models |"
echo "| held, as /v1/models counts it | $(mib $((held_b / 1024))) of $(mib $((max_b / 1024))) |"
echo "| fixed overhead (RSS with no model loaded, after one was) | $(mib "$overhead") |"
echo "| RSS after the run | $(mib "$rss") |"
echo "| RSS − overhead | $(mib $((rss - overhead))) (bound $(mib $((max_b / 1024)))) |"
echo "| peak RSS | $(mib "$(hwm_kib "$server")") |"
