#!/usr/bin/env bash
# How many pairs make a stable baseline? Builds baselines of the built-in model from N random
# pairs of 512 synthetic images (diffsim bench synth: 64 styles × 8 shapes), five times each
# with other pairs (--shuffle), and prints, for AAS at the default layer and t, the spread of
# the five means beside the standard error one baseline reports (its spread / √N), and the
# spread of the rescaled score and percentile a fixed pair (the cat and the coffee cup) gets.
#   scripts/baseline-stability.sh [N ...]     (default: 16 32 64 128 256)
# Uses a private cache folder; about 10 minutes on two busy cores, most of it drawing images.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
go build -o diffsim .
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DIFFSIM_CACHE=$work/cache
./diffsim bench synth "$work/synth" --styles 64 --contents 8 --size 256 >/dev/null
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 32 64 128 256)
printf '%6s  %-28s  %-22s  %-20s  %s\n' pairs "mean of 5 builds ± their sd" "reported std. error" "rescaled cat/coffee" "percentile cat/coffee"
for n in "${sizes[@]}"; do
  means=() ses=() resc=() pcts=()
  for s in 1 2 3 4 5; do
    rm -rf "$DIFFSIM_CACHE/baselines"
    out=$(./diffsim baseline build "$work/synth" --pairs "$n" --shuffle "$s" --t 101 --quiet)
    # "  aas at medium.attn t=101: mean 0.9669 ± 0.0012 (standard error), spread 0.0193"
    line=$(grep '^  aas at' <<<"$out")
    means+=("$(sed -E 's/.*mean ([0-9.]+) ±.*/\1/' <<<"$line")")
    ses+=("$(sed -E 's/.*± ([0-9.]+) \(.*/\1/' <<<"$line")")
    rec=$(./diffsim score testdata/samples/chelsea.png testdata/samples/coffee.png --json)
    resc+=("$(sed -E 's/.*"rescaled":([-0-9.e]+).*/\1/' <<<"$rec")")
    pcts+=("$(sed -E 's/.*"percentile":([-0-9.e]+).*/\1/' <<<"$rec")")
  done
  stats() { printf '%s\n' "$@" | awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=(q-n*m*m)/(n-1); if (v<0) v=0; printf "%.4f ± %.4f", m, sqrt(v)}'; }
  printf '%6d  %-28s  %-22s  %-20s  %s\n' "$n" "$(stats "${means[@]}")" "$(stats "${ses[@]}")" "$(stats "${resc[@]}")" "$(stats "${pcts[@]}")"
done
