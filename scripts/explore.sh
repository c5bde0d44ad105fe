#!/usr/bin/env bash
# Builds diffsim and opens the explorer with the built-in model. Flags pass through to diffsim;
# without image arguments it opens two sample photographs, the cat and the coffee cup:
#   scripts/explore.sh --t 401
#   scripts/explore.sh testdata/samples/grass.png testdata/samples/gravel.png --t 401
# Fetches the ONNX Runtime library on first use. Says what it does from the first second: the
# first build compiles a few hundred packages (1–4 minutes on two cores); later ones take
# seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'explore.sh: %s\n' "$*" >&2; }

# wait_for PID MESSAGE [COUNT_FILE TOTAL]: while PID runs, show MESSAGE with the seconds
# elapsed (and COUNT_FILE's lines of TOTAL), redrawn every second on a terminal, every 15 s
# in a log. Returns PID's exit status.
wait_for() {
  local pid=$1 msg=$2 file=${3:-} total=${4:-} start=$SECONDS tty=0 last=-1 n line
  [ -t 2 ] && tty=1
  while sleep 1 && kill -0 "$pid" 2>/dev/null; do
    line="$msg, $((SECONDS - start)) s"
    if [ -n "$file" ]; then
      n=$(grep -vc '^#' "$file" 2>/dev/null || true)
      line="$msg: ${n:-0}/$total packages, $((SECONDS - start)) s"
      [ "${n:-0}" = "$total" ] && line="$msg: $total/$total packages, linking, $((SECONDS - start)) s"
    fi
    if [ $tty = 1 ]; then
      printf '\r\033[K%s' "$line" >&2
    elif [ $((SECONDS - start)) -ge $((last + 15)) ]; then
      printf '%s\n' "$line" >&2
      last=$((SECONDS - start))
    fi
  done
  [ $tty = 1 ] && printf '\r\033[K' >&2
  wait "$pid"
}

# 1. The ONNX Runtime library: fetched once (about 110 MB; setup-runtime.sh says so).
lib=$(./scripts/setup-runtime.sh) || exit 1

# 2. Go modules: downloaded once into the module cache (at once when they are there).
go mod download &
wait_for $! "explore.sh: downloading the Go modules diffsim needs (once)" || { say "go mod download failed (see above)"; exit 1; }

# 3. The binary. -buildvcs=true: `diffsim version` names the revision even where GOFLAGS turns
# stamping off.
stale=$(go list -deps -f '{{if .Stale}}x{{end}}' . 2>/dev/null | grep -c x || true)
if [ "${stale:-0}" -gt 20 ]; then
  say "building ./diffsim: $stale packages to compile, the first time only (1–4 minutes on two cores; later builds take seconds)"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go build -v -buildvcs=true -o diffsim . 2>"$log" &
if ! wait_for $! "explore.sh: compiling" "$log" "${stale:-?}"; then
  grep -v '^[a-z0-9./_-]*$' "$log" >&2 || cat "$log" >&2
  say "the build failed (above); go version: $(go version)"
  exit 1
fi

# Split the arguments into images and flags (with their values), so the samples fill in only
# when no image was given. A flag's value is the next argument unless the flag is boolean or
# written --flag=value.
images=() flags=()
bool_flags=" --quiet --cfg --trace-startup --no-server --help -h --version "
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; images+=("$@"); break ;;
    --*=*) flags+=("$1") ;;
    -*)
      flags+=("$1")
      if [[ "$bool_flags" != *" $1 "* ]] && [ $# -gt 1 ]; then flags+=("$2"); shift; fi ;;
    *) images+=("$1") ;;
  esac
  shift
done
case ${#images[@]} in
  0) images=(testdata/samples/chelsea.png testdata/samples/coffee.png) ;;
  2) ;;
  *) echo "scripts/explore.sh: give two images, or none for the samples (got ${#images[@]}: ${images[*]})" >&2; exit 2 ;;
esac
ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$lib} exec ./diffsim "${images[@]}" ${flags[@]+"${flags[@]}"}
