#!/usr/bin/env bash
# A layer × timestep × metric grid over a data set in one run (diffsim bench --layers all --t
# LIST --metric LIST) against the same grid made cell by cell with the single-cell bench (one
# process per layer, t and metric, as before grids existed), on the built-in model and on the
# miniature SD 1.5 pipeline the tests use (seeded weights, 128 px). For each: wall time, images
# through the network and batched forwards (from each run's stderr), peak RSS (/usr/bin/time),
# and the two targets: grid time ≤ 1.3 × one single-cell run per timestep at one layer, and
# ≥ |layers| × fewer images through the network than cell by cell.
#
# Then memory on a large set: a grid over 1,024 images (diffsim bench synth, 128 styles × 8
# contents, as the triplet layout) at two timesteps, against one single-cell run on the same
# decisions: peak RSS of each (RSS=0 skips this part, which takes a few minutes).
#
#   scripts/bench-grid.sh                 # STYLES=4 CONTENTS=4 TS=101,501
# Every measured process runs alone; numbers from a shared machine are noisy, so the load
# average is printed beside each.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
[ -x /usr/bin/time ] || { echo "bench-grid: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
styles=${STYLES:-4}
contents=${CONTENTS:-4}
ts=${TS:-101,501}
metrics=aas,cos,mse
max_big=${MAX_BIG:-2000}

tmp=$(mktemp -d /tmp/diffsim-bench-grid.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "building..." >&2
go build -o "$tmp/diffsim" .
go run ./session/bench/internal/tinysd "$tmp/tinysd"
bin=$tmp/diffsim
export DIFFSIM_SOCKET=$tmp/none.sock # never a server someone runs: everything computes here
export DIFFSIM_CACHE=$tmp/cache        # a private graph cache, warmed below before any timing
"$bin" bench synth "$tmp/synth" --styles "$styles" --contents "$contents" --quiet
data=$tmp/synth # read as the triplet layout: a class per style

# measure NAME CMD...: runs CMD alone under /usr/bin/time; "wall_s peak_kb" in $tmp/NAME.time,
# stderr in $tmp/NAME.err.
measure() {
	local name=$1
	shift
	/usr/bin/time -f '%e %M' -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || {
		echo "bench-grid: $name failed:" >&2
		cat "$tmp/$name.err" >&2
		exit 1
	}
}
wall() { cut -d' ' -f1 "$tmp/$1.time"; }
calc() { awk "BEGIN { printf \"%.4f\", $* }"; }
rss_mb() { awk '{ printf "%.0f", $2 / 1024 }' "$tmp/$1.time"; }
# images and forwards from the run's "N images through the network in K batched forwards" line
images() { grep -o '[0-9]* images through the network' "$tmp/$1.err" | cut -d' ' -f1; }
forwards() { grep -o 'in [0-9]* batched forwards' "$tmp/$1.err" | cut -d' ' -f2; }

printf '| model | run | processes | images through the network | batched forwards | wall s | peak RSS MB |\n'
printf '|---|---|---|---|---|---|---|\n'
summary=()
for m in builtin tinysd; do
	case $m in
	builtin) flags=(--size 256) default=medium ;;
	tinysd) flags=(--model "$tmp/tinysd" --size 128) default=Up0 ;;
	esac
	label=$m
	[ "$m" = tinysd ] && label="miniature SD"
	# the first load of a model optimizes its graph and caches it: pay that before timing
	pair=("$data"/*/disc.png)
	"$bin" score "${pair[0]}" "${pair[1]}" "${flags[@]}" --no-server --quiet >/dev/null
	echo "$label: grid (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
	measure "$m-grid" "$bin" bench triplet "$data" "${flags[@]}" --layers all --t "$ts" --metric "$metrics" --out "$tmp/$m-grid.jsonl" --no-server
	layers=$(head -1 "$tmp/$m-grid.jsonl" | grep -o '"index":[0-9]*' | cut -d: -f2)
	nl=$(echo "$layers" | wc -l)
	nt=$(echo "$ts" | tr ',' '\n' | wc -l)
	nm=$(echo "$metrics" | tr ',' '\n' | wc -l)
	cells=$((nl * nt * nm))
	echo "$label: $cells single-cell runs (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
	cw=0 ci=0 cf=0 crss=0 ow=0 oi=0 worst=0
	for l in $layers; do
		lw=0
		for t in ${ts//,/ }; do
			for metric in ${metrics//,/ }; do
				n="$m-cell-$l-$t-$metric"
				measure "$n" "$bin" bench triplet "$data" "${flags[@]}" --layer "$l" --t "$t" --metric "$metric" --no-server
				cw=$(calc "$cw + $(wall "$n")")
				ci=$((ci + $(images "$n")))
				cf=$((cf + $(forwards "$n")))
				crss=$(( $(rss_mb "$n") > crss ? $(rss_mb "$n") : crss ))
				if [ "$metric" = aas ]; then lw=$(calc "$lw + $(wall "$n")"); fi
			done
		done
		worst=$(calc "($lw > $worst) ? $lw : $worst")
	done
	# one single-cell run per timestep at the model's default layer: what one cell costs at this |t|
	for t in ${ts//,/ }; do
		n="$m-one-$t"
		measure "$n" "$bin" bench triplet "$data" "${flags[@]}" --layer "$default" --t "$t" --no-server
		ow=$(calc "$ow + $(wall "$n")")
		oi=$((oi + $(images "$n")))
	done
	gw=$(wall "$m-grid")
	gi=$(images "$m-grid")
	gf=$(forwards "$m-grid")
	printf '| %s | grid: %d layers × %d t × %d metrics (%d cells), one run | 1 | %d | %d | %.1f | %s |\n' "$label" "$nl" "$nt" "$nm" "$cells" "$gi" "$gf" "$gw" "$(rss_mb "$m-grid")"
	printf '| %s | the same grid cell by cell (single-cell bench) | %d | %d | %d | %.1f | %s (largest) |\n' "$label" "$cells" "$ci" "$cf" "$cw" "$crss"
	printf '| %s | one single-cell run per t (%s, aas) | %d | %d | | %.1f | |\n' "$label" "$default" "$nt" "$oi" "$ow"
	summary+=("$(printf '%s: grid %.1f s against %.1f s cell by cell (%.1f× faster), %d against %d images through the network (%.0f× fewer; |layers| = %d); grid time / one single-cell run per t at %s: %.2f× (target ≤ 1.3×); at the costliest layer (sum over t, aas): %.2f×' \
		"$label" "$gw" "$cw" "$(calc "$cw / $gw")" "$gi" "$ci" "$(calc "$ci / $gi")" "$nl" "$default" "$(calc "$gw / $ow")" "$(calc "$gw / $worst")")")
done
echo
for s in "${summary[@]}"; do echo "$s"; done
echo "data: diffsim bench synth --styles $styles --contents $contents as the triplet layout ($(grep -o '[0-9]* decisions' "$tmp/builtin-grid.err" | head -1)), t = $ts, metrics $metrics; cores: $(nproc); load average now $(cut -d' ' -f1 /proc/loadavg)"

[ "${RSS:-1}" = 0 ] && exit 0
echo >&2
echo "memory: 1,024 images..." >&2
"$bin" bench synth "$tmp/big1" --styles 64 --contents 8 --seed 1 --quiet
"$bin" bench synth "$tmp/big2" --styles 64 --contents 8 --seed 2 --quiet
mkdir "$tmp/big"
for d in "$tmp"/big1/*/; do mv "$d" "$tmp/big/$(basename "$d")-a"; done
for d in "$tmp"/big2/*/; do mv "$d" "$tmp/big/$(basename "$d")-b"; done
echo
printf '| model | run on 1,024 images (%d decisions) | images through the network | batched forwards | wall s | peak RSS MB |\n' "$max_big"
printf '|---|---|---|---|---|---|\n'
for m in builtin tinysd; do
	case $m in
	builtin) flags=(--size 256) default=medium label=builtin ;;
	tinysd) flags=(--model "$tmp/tinysd" --size 128) default=Up0 label="miniature SD" ;;
	esac
	echo "  $label (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
	measure "$m-big-grid" "$bin" bench triplet "$tmp/big" "${flags[@]}" --max "$max_big" --layers all --t "$ts" --metric "$metrics" --no-server
	measure "$m-big-one" "$bin" bench triplet "$tmp/big" "${flags[@]}" --max "$max_big" --layer "$default" --t "${ts%%,*}" --no-server
	printf '| %s | grid, all layers × %s × %s | %d | %d | %.1f | %s |\n' "$label" "$ts" "$metrics" "$(images "$m-big-grid")" "$(forwards "$m-big-grid")" "$(wall "$m-big-grid")" "$(rss_mb "$m-big-grid")"
	printf '| %s | single cell (%s, t=%s, aas) | %d | %d | %.1f | %s |\n' "$label" "$default" "${ts%%,*}" "$(images "$m-big-one")" "$(forwards "$m-big-one")" "$(wall "$m-big-one")" "$(rss_mb "$m-big-one")"
done
