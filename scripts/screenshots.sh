#!/usr/bin/env bash
# Retakes the README's screenshots in docs/: the explorer on the cat and the coffee cup with
# the built-in model, in xterm as a VT340 (sixel) under Xvfb through term-shot, in tmux at
# 80×24 with half-blocks (what tmux and SSH users get), and in a real kitty.
#   TERM_SHOT=/path/to/term-shot scripts/screenshots.sh
# Needs xterm xvfb xdotool x11-apps imagemagick xfonts-base tmux, and kitty libgl1-mesa-dri
# fonts-dejavu-core for the kitty picture (skipped without kitty). About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
shot=${TERM_SHOT:-../shared/tools/term-shot}
[ -x "$shot" ] || { echo "screenshots.sh: term-shot not found at $shot; set TERM_SHOT" >&2; exit 2; }
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(./scripts/setup-runtime.sh)}
go build -o diffsim .
bin=$PWD/diffsim
pair=(testdata/samples/chelsea.png testdata/samples/coffee.png)
wait=${SHOT_WAIT:-10} # seconds for the first frame, score and layer scores on a busy machine

"$shot" -g 200x60 -o docs/explorer-sixel-200x60.png --wait "$wait" -- "$bin" "${pair[@]}"
"$shot" -g 80x24 -o docs/explorer-sixel-80x24.png --wait "$wait" -- "$bin" "${pair[@]}"
"$shot" -g 200x60 -o docs/explorer-sweep-200x60.png --wait "$wait" --key w --wait "$wait" -- "$bin" "${pair[@]}"
"$shot" -g 80x24 -o docs/explorer-help-80x24.png --wait "$wait" --key question --wait 2 -- "$bin" "${pair[@]}"
# tmux at 80×24: its status line leaves the explorer 80×23.
"$shot" -g 80x24 -o docs/explorer-halfblock-80x24.png --wait "$wait" -- \
  env TERM=xterm-256color COLORTERM=truecolor tmux -L diffsim-shots -f /dev/null new-session \
  "$bin ${pair[*]} --graphics halfblock"
tmux -L diffsim-shots kill-server 2>/dev/null || true

if command -v kitty >/dev/null; then
  d=95; while [ -e "/tmp/.X11-unix/X$d" ] || [ -e "/tmp/.X$d-lock" ]; do d=$((d+1)); done
  Xvfb ":$d" -screen 0 1920x1200x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill $xvfb 2>/dev/null || true' EXIT
  sleep 1
  DISPLAY=":$d" LIBGL_ALWAYS_SOFTWARE=1 TMUX= COLORTERM= kitty --config NONE -o font_size=10 \
    -o initial_window_width=120c -o initial_window_height=40c -o remember_window_size=no \
    -o background=white -o foreground=black /bin/bash -c "$bin ${pair[*]}; sleep 600" >/dev/null 2>&1 &
  kitty=$!
  sleep $((wait + 6))
  # kitty's OpenGL window does not answer xwd -id; the root window holds what it drew.
  DISPLAY=":$d" xwd -silent -root | /usr/bin/convert xwd:- -trim +repage docs/explorer-kitty-120x40.png
  kill $kitty 2>/dev/null || true
fi
ls -la docs/explorer-*.png
