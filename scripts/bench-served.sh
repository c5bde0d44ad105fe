#!/usr/bin/env bash
# Time from launching the explorer to its first score, as the program measures it
# (--trace-startup), with and without a running `diffsim serve`: RUNS runs computing here
# (--no-server), then, against one server started for the purpose, the first (cold: the
# server loads the model) and RUNS more (warm). Needs tmux.
#
#   scripts/bench-served.sh                          # the built-in model
#   MODEL=sd15 SIZE=512 RUNS=3 scripts/bench-served.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
model=${MODEL:-builtin}
size=${SIZE:-0}
runs=${RUNS:-5}
wait_s=${WAIT:-300} # per run, for a model's first load
dir=$(mktemp -d /tmp/diffsim-bench-served.XXXXXX)
bin=$dir/diffsim
go build -o "$bin" .
export DIFFSIM_SOCKET=$dir/s.sock
session=diffsim-served-$$
tmux new-session -d -s "$session" -x 120 -y 40 "env PS1='$ ' DIFFSIM_SOCKET=$DIFFSIM_SOCKET bash --norc --noprofile"
server=
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
sleep 0.5

# run LABEL EXTRA-FLAGS: one explorer, quit as soon as its first score is on screen.
run() {
  local label=$1 extra=$2
  tmux send-keys -t "$session" clear Enter
  tmux send-keys -t "$session" -l "$bin testdata/samples/chelsea.png testdata/samples/coffee.png --model $model --size $size --graphics halfblock --quiet --trace-startup $extra 2>>$dir/trace.$label"
  tmux send-keys -t "$session" Enter
  for _ in $(seq $((wait_s * 10))); do
    tmux capture-pane -p -t "$session" | grep -q 'AAS [0-9]\.' && break
    sleep 0.1
  done
  tmux send-keys -t "$session" q
  for _ in $(seq 50); do # until the explorer has written its trace and exited
    grep -q 'first score' "$dir/trace.$label" 2>/dev/null && [ "$(grep -c 'first score' "$dir/trace.$label")" -ge "$3" ] && break
    sleep 0.1
  done
}

report() {
  local label=$1 times n median
  times=$(grep -o 'first score [0-9]* ms' "$dir/trace.$label" | awk '{ print $3 }' | sort -n)
  n=$(wc -l <<<"$times")
  median=$(sed -n "$(( (n + 1) / 2 ))p" <<<"$times")
  printf '%-28s median %6s ms   (%s runs: %s)\n' "$label" "$median" "$n" "$(tr '\n' ' ' <<<"$times")"
}

for i in $(seq "$runs"); do run here --no-server "$i"; done

"$bin" serve --socket "$DIFFSIM_SOCKET" --quiet &
server=$!
for _ in $(seq 100); do [ -S "$DIFFSIM_SOCKET" ] && break; sleep 0.1; done
run served-cold "" 1
for i in $(seq "$runs"); do run served-warm "" "$i"; done

grep -h 'served' "$dir/trace.served-warm" | grep -q '(served)' || { echo "the explorer did not use the server" >&2; exit 1; }
echo "launch to first score, $model, size $size (0: the model's default), 120x40 half-blocks:"
report here
report served-cold
report served-warm
