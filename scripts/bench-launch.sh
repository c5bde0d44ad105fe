#!/usr/bin/env bash
# Time from launching the explorer (built-in model, two sample photos, 120x40, half-blocks)
# to both images being ready for the screen, as the program measures it (--trace-startup),
# five runs in tmux. Target: under 300 ms. Needs tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
dir=$(mktemp -d)
bin=$dir/diffsim
go build -o "$bin" .
session=diffsim-launch-$$
tmux new-session -d -s "$session" -x 120 -y 40 "env PS1='$ ' bash --norc --noprofile"
trap 'tmux kill-session -t "$session" 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.5
for run in 1 2 3 4 5; do
  tmux send-keys -t "$session" clear Enter
  tmux send-keys -t "$session" -l "$bin testdata/samples/chelsea.png testdata/samples/coffee.png --graphics halfblock --quiet --trace-startup 2>>$dir/trace"
  tmux send-keys -t "$session" Enter
  for _ in $(seq 100); do
    tmux capture-pane -p -t "$session" | grep -q 'AAS 0\.' && break
    sleep 0.1
  done
  tmux send-keys -t "$session" q
  sleep 0.5
done
times=$(grep -o 'first frame [0-9]* ms' "$dir/trace" | awk '{ print $3 }' | sort -n)
n=$(wc -l <<<"$times")
median=$(sed -n "$(( (n + 1) / 2 ))p" <<<"$times")
echo "launch to both images ready (ms, $n runs): $(tr '\n' ' ' <<<"$times")"
echo "median $median ms (target 300 ms)"
