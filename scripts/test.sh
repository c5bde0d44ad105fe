#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this). Needs Go, gcc and npm.
# Fetches the ONNX Runtime library first: engine tests run for real and fail, never skip, when
# it cannot be loaded.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT=$(./scripts/setup-runtime.sh)
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$ORT}

# Tools the end-to-end and screenshot tests drive; installed when missing and apt is usable.
if [ -n "${CI:-}" ] || [ -n "${DIFFSIM_INSTALL_TEST_TOOLS:-}" ]; then
  need=()
  command -v tmux >/dev/null || need+=(tmux)
  command -v img2sixel >/dev/null || need+=(libsixel-bin)
  # The screenshot test runs the explorer in a real sixel terminal (xterm as a VT340 under Xvfb).
  command -v xterm >/dev/null || need+=(xterm)
  command -v Xvfb >/dev/null || need+=(xvfb)
  command -v xdotool >/dev/null || need+=(xdotool)
  command -v xwd >/dev/null || need+=(x11-apps)
  command -v convert >/dev/null || need+=(imagemagick)
  [ -d /usr/share/fonts/X11/misc ] || need+=(xfonts-base)
  # diffsim video decodes clips with ffmpeg.
  command -v ffmpeg >/dev/null || need+=(ffmpeg)
  if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "test: installing ${need[*]}" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

echo "== go vet"
go vet ./...
echo "== without cgo: the engine's twin keeps every other package building and testing"
CGO_ENABLED=0 go vet ./...
if ! out=$(CGO_ENABLED=0 go test -short -count=1 ./... 2>&1); then
  echo "$out"
  exit 1
fi
echo "== go test -race (every package; fuzz targets run their seed corpus)"
go test -race -count=1 -timeout 20m ./...
