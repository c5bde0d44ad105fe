#!/usr/bin/env bash
# The explorer's start-up on one model, as the program measures it (--trace-startup): launch to
# the first score, launch to the layer bars (every layer's score at the starting timestep), and
# the process's peak resident memory (/usr/bin/time), RUNS runs per mode, in tmux at 120x40,
# computing here (--no-server). Modes (MODES, default "full pruned"):
#   full    the first score comes from the whole network's forward, which also fills the bars
#           (--prune-first=false)
#   pruned  the first score comes from the network cut down to the starting layer, then the
#           whole forward fills the bars (the explorer's default)
# Runs alternate between the modes so that a shared machine's load falls on both alike; the
# load average is printed before each. CACHE=warm (default) keeps diffsim's caches (graphs,
# latents) in one folder for the whole run, after one unmeasured warm-up run per mode;
# CACHE=cold turns them off (DIFFSIM_GRAPH_CACHE=off DIFFSIM_MEMO=off).
#
#   scripts/bench-first-score.sh                               # the built-in model
#   MODEL=toy-sd scripts/bench-first-score.sh
#   MODEL=/tmp/sd15 SIZE=256 RUNS=2 CACHE=cold scripts/bench-first-score.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
[ -x /usr/bin/time ] || { echo "bench-first-score: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
model=${MODEL:-builtin}
size=${SIZE:-0}
runs=${RUNS:-3}
modes=${MODES:-full pruned}
cache=${CACHE:-warm}
wait_s=${WAIT:-900} # per run: a full-size model's cold start
dir=$(mktemp -d /tmp/diffsim-bench-first.XXXXXX)
bin=$dir/diffsim
go build -o "$bin" .
session=diffsim-first-$$
tmux new-session -d -s "$session" -x 120 -y 40 "env PS1='$ ' bash --norc --noprofile"
trap 'tmux kill-session -t "$session" 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.5

envs="DIFFSIM_CACHE=$dir/cache"
if [ "$cache" = cold ]; then envs="$envs DIFFSIM_GRAPH_CACHE=off DIFFSIM_MEMO=off"; fi

# run MODE LABEL: one explorer, quit once its layer bars are on screen.
run() {
  local mode=$1 label=$2 prune=false
  [ "$mode" = pruned ] && prune=true
  echo "  $label (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  : >"$dir/trace.now"
  tmux send-keys -t "$session" clear Enter
  tmux send-keys -t "$session" -l "env $envs /usr/bin/time -f 'peak %M' -a -o $dir/trace.now $bin testdata/samples/chelsea.png testdata/samples/coffee.png --model $model --size $size --graphics halfblock --quiet --no-server --trace-startup --prune-first=$prune 2>>$dir/trace.now"
  tmux send-keys -t "$session" Enter
  for _ in $(seq $((wait_s * 10))); do
    screen=$(tmux capture-pane -p -t "$session")
    if grep -q 'AAS [0-9]\.' <<<"$screen" && ! grep -q 'scores not computed yet' <<<"$screen"; then break; fi
    sleep 0.1
  done
  tmux send-keys -t "$session" q
  for _ in $(seq 600); do grep -q '^peak' "$dir/trace.now" && break; sleep 0.1; done
  local first bars peak
  first=$(grep -o 'first score [0-9]* ms' "$dir/trace.now" | awk '{ print $3 }')
  bars=$(grep -o 'layer bars [0-9]* ms' "$dir/trace.now" | awk '{ print $3 }')
  peak=$(awk '/^peak/ { printf "%.0f", $2 / 1024 }' "$dir/trace.now")
  echo "$mode ${first:-?} ${bars:-?} ${peak:-?}" >>"$dir/results"
  echo "    first score ${first:-?} ms, layer bars ${bars:-?} ms, peak ${peak:-?} MiB" >&2
}

if [ "$cache" = warm ]; then
  for mode in $modes; do run "$mode" "warm-up, $mode"; done
  : >"$dir/results"
fi
for i in $(seq "$runs"); do
  for mode in $modes; do run "$mode" "run $i, $mode"; done
done

echo "explorer start-up, model $model, size $size (0: the model's default), caches $cache, 120x40 half-blocks, --no-server:"
echo
echo "| first score from | launch to first score (ms) | launch to layer bars (ms) | peak RSS (MiB) |"
echo "|---|---|---|---|"
for mode in $modes; do
  awk -v m="$mode" '
    $1 == m { f = f sep $2; b = b sep $3; p = p sep $4; sep = ", " }
    END { printf "| %s | %s | %s | %s |\n", m == "full" ? "the whole forward" : "the pruned graph", f, b, p }' "$dir/results"
done
