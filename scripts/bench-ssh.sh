#!/usr/bin/env bash
# Memory of `diffsim serve --ssh` as sessions join: N OpenSSH clients (in tmux, 100×30 each)
# explore the same pair on one model; the server's resident memory is read after the first
# session shows its score and after all N do. Prints a table and the cost per extra session.
#
#   scripts/bench-ssh.sh [N] [--size PX] [--model NAME]     (default 20 sessions, built-in model)
#
# Needs tmux and openssh-client. Everything runs on loopback, in a temporary folder removed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

n=20
if [[ $# -gt 0 && $1 != -* ]]; then n=$1; shift; fi
for tool in tmux ssh ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "bench-ssh: $tool is needed (apt-get install tmux openssh-client)" >&2; exit 2; }
done

ORT=$(./scripts/setup-runtime.sh)
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$ORT}
work=$(mktemp -d)
server=""
sessions=()
cleanup() {
  for s in "${sessions[@]}"; do tmux kill-session -t "$s" 2>/dev/null || true; done
  [[ -n $server ]] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/diffsim" .
ssh-keygen -q -t ed25519 -N "" -f "$work/key"
cp "$work/key.pub" "$work/authorized_keys"
mkdir "$work/images"
cp testdata/samples/chelsea.png testdata/samples/coffee.png "$work/images/"

DIFFSIM_STATE="$work/state" DIFFSIM_SOCKET="$work/s.sock" DIFFSIM_GRAPH_CACHE=off \
  "$work/diffsim" serve --ssh 127.0.0.1:0 --images "$work/images" --authorized-keys "$work/authorized_keys" \
  --ssh-per-key "$n" --ssh-max-sessions "$n" "$@" 2>"$work/serve.log" &
server=$!
port=""
for _ in $(seq 600); do
  port=$(grep -o 'explorer over SSH on 127.0.0.1:[0-9]*' "$work/serve.log" | grep -o '[0-9]*$' || true)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "bench-ssh: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$server/status"; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1e6}'; }
open_session() {
  local name="diffsim-bench-ssh-$$-$1"
  sessions+=("$name")
  tmux new-session -d -s "$name" -x 100 -y 30 \
    "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -i $work/key -p $port -t localhost chelsea.png coffee.png"
}
wait_ready() {
  for _ in $(seq 1200); do
    tmux capture-pane -p -t "$1" 2>/dev/null | grep -q 'AAS [0-9]' && tmux capture-pane -p -t "$1" | grep -q 'ready' && return 0
    sleep 0.1
  done
  echo "bench-ssh: session $1 showed no score within 2 minutes" >&2
  exit 1
}

before=$(rss)
open_session 1
wait_ready "${sessions[0]}"
one=$(rss)
for i in $(seq 2 "$n"); do open_session "$i"; done
for s in "${sessions[@]}"; do wait_ready "$s"; done
sleep 1 # let the last frames' buffers settle
all=$(rss)
models=$(curl -s --unix-socket "$work/s.sock" http://diffsim/v1/models | grep -o '"name"' | wc -l || echo "?")

printf '%-32s %10s\n' "server" "RSS (MB)"
printf '%-32s %10s\n' "started, no session" "$(mb "$before")"
printf '%-32s %10s\n' "1 session (model loaded)" "$(mb "$one")"
printf '%-32s %10s\n' "$n sessions" "$(mb "$all")"
echo "per extra session: $(mb $(( (all - one) / (n - 1) ))) MB; models loaded: $models"
