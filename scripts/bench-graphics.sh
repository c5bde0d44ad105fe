#!/usr/bin/env bash
# bench-graphics.sh: encode the same photograph and heatmap at the explorer's on-screen
# sizes with this project's encoders and with libsixel's img2sixel, in one run, and print
# encoder, image, median ms, bytes and PSNR (every sixel output decoded with go-sixel's
# decoder, so both sides are measured the same way).
#
# usage: scripts/bench-graphics.sh [-photo FILE] [-sizes 256,480] [-runs 9] [-img2sixel PATH]
# Needs Go; img2sixel (Debian: libsixel-bin) for the reference rows, skipped if missing.
# img2sixel's time includes its process start and PNG decode, as a program calling it
# would pay; diffsim's "Quantize+encode" row is a photo's first encode, "cached palette"
# every later one, and heatmaps need no quantising.
set -euo pipefail
cd "$(dirname "$0")/.."

photo=""
for p in testdata/samples/astronaut.png ../shared/samples/astronaut.png; do
  [ -f "$p" ] && { photo=$p; break; }
done
args=()
[ -n "$photo" ] && args+=(-photo "$photo")
if ! command -v img2sixel >/dev/null; then
  echo "bench-graphics: img2sixel not found (apt-get install libsixel-bin); reference rows skipped" >&2
  args+=(-img2sixel "")
fi

echo "# $(go version | cut -d' ' -f3) · $(nproc) CPUs · $(img2sixel --version 2>/dev/null | head -1 || echo 'no img2sixel') · $(date -u +%FT%TZ)"
exec go run ./heatmap/internal/benchgfx "${args[@]}" "$@"
