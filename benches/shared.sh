#!/usr/bin/env bash
# The store's figures side by side: sled (embedded) and PostgreSQL (shared),
# on this machine. Makes a throwaway PostgreSQL cluster (initdb in a
# temporary directory, on a Unix socket only; as the postgres account when
# run as root, since PostgreSQL refuses root), runs `cargo bench --bench
# store` against each, and removes the cluster. Prints figures; fails on
# none of them.
#
#     bash benches/shared.sh            # EVENTS=100000 OPS=100000 SINGLE=2000
set -euo pipefail
cd "$(dirname "$0")/.."
: "${EVENTS:=100000}" "${OPS:=100000}" "${SINGLE:=2000}"
export EVENTS OPS SINGLE
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "initdb not found (apt-get install postgresql)"; exit 1; }
dir=$(mktemp -d /tmp/gh-bench-pg.XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$dir"
  as=(runuser -u postgres --)
fi
cleanup() { "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -U gatehouse --auth=trust -E UTF8 >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-k $dir -c listen_addresses=''" start >/dev/null
"$bin/psql" -X -q -h "$dir" -U gatehouse -d postgres -c "CREATE DATABASE bench" >/dev/null

echo "== sled =="
cargo bench --quiet --bench store 2>/dev/null
echo
echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') (synchronous_commit on, fsync on) =="
STORE_URL="host=$dir user=gatehouse dbname=bench" cargo bench --quiet --bench store 2>/dev/null

# A fan-out of FANOUT devices (200) through a real sshd, Gatehouse alone,
# on each store.
: "${FANOUT:=200}"
echo
echo "== fan-out, $FANOUT devices, sled =="
GH_ONLY=1 bash benches/fanout.sh "$FANOUT" | grep -v '^$'
"$bin/psql" -X -q -h "$dir" -U gatehouse -d postgres -c "CREATE DATABASE fanout" >/dev/null
echo "== fan-out, $FANOUT devices, PostgreSQL =="
STORE_URL="host=$dir user=gatehouse dbname=fanout" GH_ONLY=1 bash benches/fanout.sh "$FANOUT" | grep -v '^$'
