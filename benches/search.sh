#!/usr/bin/env bash
# `gatehouse search` over stored output: OPS operations (a local task on
# 50 devices, run OPS/50 times), each printing LINES lines of 100 bytes,
# one of which holds the needle in every 97th operation. Prints the time
# to search all of it and with a device filter, against `grep -c` over the
# same output files. Not a test: it never fails on a timing.
# Usage: [OPS=2000] [LINES=200] benches/search.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ops=${OPS:-2000}
lines=${LINES:-200}
cargo build --release --quiet
GH="$PWD/target/release/gatehouse"
work=$(mktemp -d)
data="$work/data"
trap '"$GH" --data-dir "$data" shutdown >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
{
  echo '[[environment]]'; echo 'name = "bench"'; echo '[[system]]'; echo 'name = "bench"'
  for i in $(seq 1 50); do
    echo '[[device]]'; echo "name = \"d$i\""; echo 'address = "127.0.0.1"'
    echo 'environment = "bench"'; echo 'system = "bench"'
  done
  echo '[[credential]]'; echo 'name = "none"'; echo 'username = "root"'
  echo '[[template]]'; echo 'name = "print"'; echo 'executor = "local"'
  echo "content = \"n=\$(od -An -N2 -tu2 /dev/urandom | tr -d ' '); i=0; while [ \$i -lt $lines ]; do printf '%s line %05d of some ordinary output that fills a hundred bytes more or less......\\\\n' \$n \$i; i=\$((i+1)); done; [ \$((n % 97)) -eq 0 ] && echo needle-found-here || true\""
  echo '[[task]]'; echo 'name = "print"'; echo 'template = "print"'; echo 'environment = "bench"'
  echo 'system = "bench"'; echo 'credential = "none"'; echo 'parallelism = 50'
  echo -n 'devices = ['; for i in $(seq 1 50); do echo -n "\"d$i\","; done; echo ']'
} > "$work/records.toml"
"$GH" --data-dir "$data" import "$work/records.toml" >/dev/null
echo "storing $ops operations of $lines lines each..."
start=$(date +%s.%N)
for _ in $(seq 1 $((ops / 50))); do
  "$GH" --data-dir "$data" request print --wait >/dev/null
done
echo "stored in $(echo "$(date +%s.%N) - $start" | bc) s; output on disk: $(du -sh "$data" | cut -f1)"
for run in 1 2 3; do
  start=$(date +%s.%N)
  n=$("$GH" --data-dir "$data" search needle-found --limit 100000 2>"$work/err" | wc -l)
  echo "search all (run $run): $n lines in $(echo "$(date +%s.%N) - $start" | bc) s — $(cat "$work/err")"
done
start=$(date +%s.%N)
n=$("$GH" --data-dir "$data" search needle-found --device d7 --limit 100000 2>/dev/null | wc -l)
echo "search one device: $n lines in $(echo "$(date +%s.%N) - $start" | bc) s"
start=$(date +%s.%N)
n=$(grep -r -a -c needle-found "$data" 2>/dev/null | awk -F: '{s+=$NF} END {print s+0}')
echo "grep -r over the data directory: $n lines in $(echo "$(date +%s.%N) - $start" | bc) s"
