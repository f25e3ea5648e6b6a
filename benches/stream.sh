#!/usr/bin/env bash
# Streaming benchmark: one operation printing LINES lines (default 1,000,000)
# on a real sshd on loopback. Gatehouse (`request --wait`: every line stored
# in order, redacted, numbered and printed by the client) against plain
# `ssh host cmd > /dev/null`. Median of RUNS runs (default 3); prints wall
# time and the peak memory of the Gatehouse server, which must stay bounded
# however long the output. Not a test: it never fails on a timing.
# Then REPEAT operations (default 10) of the same script in a row on one
# server with the default output cap (16 MiB each), printing the server's
# memory after each: stored output must not stay in the server's memory.
# Usage: [LINES=1000000] [RUNS=3] [REPEAT=10] benches/stream.sh
# Needs root, openssh-server and GNU time: apt-get install -y openssh-server time
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${LINES:-1000000}
runs=${RUNS:-3}
source benches/sshd.sh

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
script="seq 1 $lines | sed 's/^/line of output number /'"

data="$work/data"
cat > "$work/records.toml" <<TOML
[[environment]]
name = "bench"
[[system]]
name = "bench"
[[device]]
name = "d1"
address = "127.0.0.1"
port = $port
environment = "bench"
system = "bench"
host_key = "$hostkey"
[[credential]]
name = "k"
username = "$user"
private_key_file = "$work/id"
[[template]]
name = "t"
executor = "ssh-script"
content = "$script"
[[task]]
name = "stream"
template = "t"
environment = "bench"
system = "bench"
credential = "k"
devices = ["d1"]
TOML
"$GH" --data-dir "$data" import "$work/records.toml" >/dev/null
"$GH" --data-dir "$data" shutdown >/dev/null

ssh_walls=(); gh_walls=(); gh_rss=(); gh_bytes=(); gh_client_cpu=(); gh_server_cpu=()
for _ in $(seq 1 "$runs"); do
  /usr/bin/time -f "%e" -o "$work/time" ssh -i "$work/id" -p "$port" -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o BatchMode=yes "$user@127.0.0.1" "$script" > "$work/ssh-out" 2>/dev/null
  ssh_walls+=("$(cat "$work/time")")
  # The output cap raised above the 29 MB this prints (default 16 MiB).
  /usr/bin/time -f "%e %M %U %S" -o "$work/server-time" "$GH" --data-dir "$data" serve --personal --idle-exit 600 --output-cap 268435456 >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 1 200); do [ -S "$data/gatehouse.sock" ] && break; sleep 0.05; done
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$GH" --data-dir "$data" request stream --wait > "$work/gh-out" 2>/dev/null
  read -r wall cu cs < "$work/time"
  gh_walls+=("$wall"); gh_client_cpu+=("$(awk -v a="$cu" -v b="$cs" 'BEGIN{print a+b}')")
  "$GH" --data-dir "$data" shutdown >/dev/null
  wait "$server" || true
  read -r _ rss su ss < "$work/server-time"
  gh_rss+=("$rss"); gh_server_cpu+=("$(awk -v a="$su" -v b="$ss" 'BEGIN{print a+b}')")
  gh_bytes+=("$(wc -l < "$work/gh-out")")
done
echo "-- $lines lines, one operation (median of $runs runs)"
printf 'ssh > /dev/null        wall %7.2f s   (%s lines)\n' "$(median "${ssh_walls[@]}")" "$(wc -l < "$work/ssh-out")"
printf 'gatehouse request      wall %7.2f s   (%s lines shown, all stored)   server peak rss %s MiB\n' \
  "$(median "${gh_walls[@]}")" "$(median "${gh_bytes[@]}")" "$(mib "$(median "${gh_rss[@]}")")"
printf '                       cpu: server %.2f s, client %.2f s\n' "$(median "${gh_server_cpu[@]}")" "$(median "${gh_client_cpu[@]}")"

repeat=${REPEAT:-10}
if [ "$repeat" -gt 0 ]; then
  "$GH" --data-dir "$data" serve --personal --idle-exit 600 >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 1 200); do [ -S "$data/gatehouse.sock" ] && break; sleep 0.05; done
  rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
  echo "-- $repeat operations in a row on one server, default output cap (16 MiB each)"
  printf 'before          server rss %s MiB\n' "$(rss)"
  for i in $(seq 1 "$repeat"); do
    "$GH" --data-dir "$data" request stream --wait >/dev/null 2>&1 || true
    printf 'after %-3s       server rss %s MiB   output stored %s\n' "$i" "$(rss)" "$(du -sh "$data/output" | cut -f1)"
  done
  # Everything stored, read back whole, three times over.
  ids=$("$GH" --data-dir "$data" history --json --limit 1000 | grep -o '"id":[0-9]*' | cut -d: -f2)
  for round in 1 2 3; do
    start=$(date +%s.%N)
    for id in $ids; do "$GH" --data-dir "$data" logs "$id" >/dev/null; done
    printf 'read all back %s  server rss %s MiB   (%s operations in %.2f s)\n' "$round" "$(rss)" \
      "$(echo "$ids" | wc -w)" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
  done
  printf 'peak            server rss %s MiB\n' "$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")"
  "$GH" --data-dir "$data" shutdown >/dev/null
  wait "$server" || true
fi
