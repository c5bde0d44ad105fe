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
test_packages=(util-linux tmux libsixel-bin xterm xvfb xdotool x11-apps imagemagick xfonts-base ffmpeg kitty libgl1-mesa-dri fonts-dejavu-core
  slurmctld slurmd slurm-client munge openssh-client)
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

# gotestsum runs `go test -json`, prints a line per package and the failures, then lists every
# skipped test with its reason; the last line counts the tests of the main run.
gotestsum=(go run gotest.tools/gotestsum@v1.13.0)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
# Tests that open diffusion folders keep VAE latents and text embeddings on disk: keep them out of
# the user's cache, and start every run without them so each run computes what it checks.
export DIFFSIM_MEMO="$results/memo"
count() { # the summary line of a go test -json file; package failures (a build error) count as failed
  awk -F'"Action":"' 'NF > 1 {
      split($2, a, "\""); pkg = $0; sub(/.*"Package":"/, "", pkg); sub(/".*/, "", pkg)
      if ($0 ~ /"Test":/) { n[a[1]]++; if (a[1] == "fail") failed[pkg] = 1 }
      else if (a[1] == "fail" && !(pkg in failed)) n["fail"]++
    }
    END { printf "%d passed, %d failed, %d skipped\n", n["pass"], n["fail"], n["skip"] }' "$1"
}

echo "== go vet"
go vet ./...
echo "== without cgo: the engine's twin keeps every other package building and testing"
CGO_ENABLED=0 go vet ./...
# Without cgo every test that needs ONNX Runtime skips for that one reason: hide that list.
status=0
CGO_ENABLED=0 "${gotestsum[@]}" --format pkgname-and-test-fails --format-hide-empty-pkg --hide-summary skipped \
  --jsonfile "$results/nocgo.json" -- -short -count=1 ./... || status=$?
echo "without cgo: $(count "$results/nocgo.json")"
[ $status -eq 0 ] || exit $status
echo "== go test -race (every package; fuzz targets run their seed corpus)"
status=0
"${gotestsum[@]}" --format pkgname-and-test-fails --format-hide-empty-pkg \
  --jsonfile "$results/race.json" -- -race -count=1 -timeout 20m ./... || status=$?
count "$results/race.json"
exit $status
