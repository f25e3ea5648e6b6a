#!/usr/bin/env bash
# Keypress-to-screen latency of the real TUI, measured through tmux: the
# binary runs in a tmux pane on a store with OPS operations in history; a
# key switches screens and the time until capture-pane shows the new screen
# is taken, PRESSES times. Includes tmux's own round trips (send-keys and
# each capture-pane poll), so it is an upper bound. Prints the median and
# the 95th percentile. Not a test.
# Usage: [OPS=10000] [PRESSES=60] benches/keypress.sh      (needs tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
ops=${OPS:-10000}
presses=${PRESSES:-60}
cargo build --release --quiet
GH=$PWD/target/release/gatehouse
data=$(mktemp -d /tmp/gh-keys.XXXXXX)
session=gh-keys-$$
trap 'tmux kill-session -t "$session" 2>/dev/null || true; "$GH" --data-dir "$data" shutdown >/dev/null 2>&1 || true; rm -rf "$data"' EXIT

# A history of $ops operations: a local task on 100 devices, run until there are enough.
{
  echo '[[environment]]'; echo 'name = "lab"'; echo '[[system]]'; echo 'name = "box"'
  echo '[[credential]]'; echo 'name = "none"'; echo 'username = "root"'
  for i in $(seq 1 100); do
    echo '[[device]]'; echo "name = \"n$i\""; echo 'address = "127.0.0.1"'; echo 'environment = "lab"'; echo 'system = "box"'
  done
  echo '[[template]]'; echo 'name = "t"'; echo 'executor = "local"'; echo 'content = "true"'
  echo '[[task]]'; echo 'name = "fill"'; echo 'template = "t"'; echo 'environment = "lab"'; echo 'system = "box"'
  echo 'credential = "none"'; echo 'parallelism = 100'
  printf 'devices = ['; for i in $(seq 1 100); do printf '"n%s",' "$i"; done; echo ']'
} > "$data/records.toml"
"$GH" --data-dir "$data" import "$data/records.toml" >/dev/null
for _ in $(seq 1 $(( ops / 100 ))); do "$GH" --data-dir "$data" request fill --wait >/dev/null 2>&1 || true; done
echo "history: $("$GH" --data-dir "$data" history --json --limit 1000000 | wc -l) operations"

start=$(date +%s%N)
tmux new-session -d -s "$session" -x 120 -y 40 "$GH --data-dir $data"
until tmux capture-pane -p -t "$session" | grep -q "1 Dashboard"; do sleep 0.001; done
echo "start to first frame (through tmux): $(( ($(date +%s%N) - start) / 1000000 )) ms"

times=()
for i in $(seq 1 "$presses"); do
  if (( i % 2 )); then key=5; want="History, newest first"; else key=6; want="Audit log"; fi
  t0=$(date +%s%N)
  tmux send-keys -t "$session" "$key"
  until tmux capture-pane -p -t "$session" | grep -q "$want"; do :; done
  times+=($(( ($(date +%s%N) - t0) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$presses" '{a[NR]=$1} END {
  printf "keypress to screen over %d presses: median %.1f ms, p95 %.1f ms, max %.1f ms\n", n, a[int((n+1)/2)]/1000, a[int(n*0.95)]/1000, a[n]/1000 }'
