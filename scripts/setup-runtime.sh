#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library diffsim runs on (CPU build, from the npm package
# onnxruntime-node, without running any install script) into diffsim's cache, checks its
# sha256, and prints its path. Does nothing when the library is already there.
#
# The cache folder is $DIFFSIM_CACHE, else $XDG_CACHE_HOME/diffsim, else ~/.cache/diffsim;
# the Go code looks in the same place (engine.DefaultLibraryPath).
set -euo pipefail

version=1.30.0
sha256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
member=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

cache=${DIFFSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diffsim}
dest="$cache/onnxruntime/$version/libonnxruntime.so.1"

if [ -f "$dest" ] && echo "$sha256  $dest" | sha256sum -c --status; then
  echo "$dest"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "setup-runtime: no prebuilt library for $(uname -s)/$(uname -m) in onnxruntime-node; set ONNXRUNTIME_LIB to your own build" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "setup-runtime: npm not found (apt-get install -y npm), or set ONNXRUNTIME_LIB to a libonnxruntime.so you have" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "setup-runtime: fetching onnxruntime-node@$version from the npm registry (about 110 MB)..." >&2
(cd "$work" && npm pack "onnxruntime-node@$version" --ignore-scripts --silent >/dev/null)
tar -xzf "$work/onnxruntime-node-$version.tgz" -C "$work" "$member"
echo "$sha256  $work/$member" | sha256sum -c --status || {
  echo "setup-runtime: checksum mismatch for $member in onnxruntime-node@$version; refusing to install it" >&2
  exit 1
}
mkdir -p "$(dirname "$dest")"
# Rename into place so a half-copied library is never seen by a running diffsim.
cp "$work/$member" "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
echo "$dest"
