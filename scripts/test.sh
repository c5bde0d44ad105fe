#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this). Needs Go, gcc and npm.
# Fetches the ONNX Runtime library first: engine tests run for real and fail, never skip, when
# it cannot be loaded.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT=$(./scripts/setup-runtime.sh)
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$ORT}

# Tools the end-to-end and screenshot tests drive; installed when missing and apt is usable.
# A package counts as present only when dpkg says it is installed: machine images put
# stand-ins on PATH (a `convert` that is not ImageMagick), so `command -v` proves nothing.
test_packages=(tmux libsixel-bin xterm xvfb xdotool x11-apps imagemagick xfonts-base ffmpeg slurmctld slurmd slurm-client munge)
missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}
if [ -n "${CI:-}" ] || [ -n "${DIFFSIM_INSTALL_TEST_TOOLS:-}" ]; then
  mapfile -t need < <(missing_packages "${test_packages[@]}")
  if [ ${#need[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "test: installing ${need[*]}" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
      mapfile -t still < <(missing_packages "${need[@]}")
      [ ${#still[@]} -eq 0 ] || { echo "test: could not install ${still[*]}" >&2; exit 1; }
    else
      echo "test: missing ${need[*]} and cannot install them (needs root and apt-get); the tests that use them will fail in CI" >&2
    fi
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
