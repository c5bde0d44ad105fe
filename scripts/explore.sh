#!/usr/bin/env bash
# Builds diffsim and opens the explorer with the built-in model. Flags pass through to diffsim;
# without image arguments it opens two sample images (with --model toy-sd, two generated images
# of one style and two shapes):
#   scripts/explore.sh --t 401
#   scripts/explore.sh --model toy-sd
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
# --model toy-sd (or toy-sd-untrained) without images: two images of the set the model was
# evaluated on (`diffsim bench synth`, seed 1, drawn once into the cache) that share a style
# and differ in shape.
if [ ${#images[@]} -eq 0 ] && [[ " ${flags[*]} " =~ [[:space:]]--model[[:space:]=]toy-sd ]]; then
  set_dir=${DIFFSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diffsim}/synth-seed1
  [ -f "$set_dir/blotches-sea/bar.png" ] || ./diffsim bench synth "$set_dir" --quiet
  images=("$set_dir/stripes-warm/disc.png" "$set_dir/stripes-warm/triangle.png")
fi
case ${#images[@]} in
  0) images=(testdata/samples/grass.png testdata/samples/gravel.png) ;;
  2) ;;
  *) echo "scripts/explore.sh: give two images, or none for the samples (got ${#images[@]}: ${images[*]})" >&2; exit 2 ;;
esac
exec ./diffsim "${images[@]}" ${flags[@]+"${flags[@]}"}
