#!/usr/bin/env bash
# Builds diffsim and opens the explorer with the built-in model. Flags pass through to diffsim;
# without image arguments it opens two sample images:
#   scripts/explore.sh --t 401
#   scripts/explore.sh testdata/samples/chelsea.png testdata/samples/coffee.png --t 401
# Fetches the ONNX Runtime library on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-runtime.sh >/dev/null
# -buildvcs=true: `diffsim version` names the revision even where GOFLAGS turns stamping off.
go build -buildvcs=true -o diffsim .

# Split the arguments into images and flags (with their values), so the samples fill in only
# when no image was given. A flag's value is the next argument unless the flag is boolean or
# written --flag=value.
images=() flags=()
bool_flags=" --quiet --cfg --trace-startup --no-server --help -h "
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
  0) images=(testdata/samples/grass.png testdata/samples/gravel.png) ;;
  2) ;;
  *) echo "scripts/explore.sh: give two images, or none for the samples (got ${#images[@]}: ${images[*]})" >&2; exit 2 ;;
esac
exec ./diffsim "${images[@]}" ${flags[@]+"${flags[@]}"}
