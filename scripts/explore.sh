#!/usr/bin/env bash
# Builds diffsim and opens the explorer on two sample images with the built-in model.
# Fetches the ONNX Runtime library on first use. Extra arguments go to diffsim, e.g.
#   scripts/explore.sh testdata/samples/chelsea.png testdata/samples/coffee.png --t 401
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-runtime.sh >/dev/null
go build -o diffsim .
if [ $# -ge 2 ]; then
  exec ./diffsim "$@"
fi
exec ./diffsim testdata/samples/grass.png testdata/samples/gravel.png "$@"
