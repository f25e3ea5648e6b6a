#!/usr/bin/env bash
# Fan-out benchmark: one short script on N devices through a real sshd on
# loopback, Gatehouse versus parallel-ssh (pssh) and Ansible (`ansible -m
# shell -f N`), same key, same parallelism. Each tool runs RUNS times (default
# 3) per size; prints the median wall time, CPU time and peak memory (RSS).
# Not a test: it never fails on a timing.
# Usage: [RUNS=3] [STOCK=1] benches/fanout.sh [N ...]   (default: 50 200 500)
# STORE_URL=postgresql://…: Gatehouse keeps its store there (one size per
# database); GH_ONLY=1: Gatehouse alone (no pssh or Ansible needed).
# STOCK=1: sshd keeps OpenSSH's stock MaxStartups 10:30:100 instead of the
# raised setting; parallel-ssh then runs at 10 in flight (-p 10), since more
# is dropped; Gatehouse keeps its defaults.
# Needs root (sshd, a test account), openssh-server, pssh, ansible-core, GNU time:
#   apt-get install -y openssh-server pssh ansible-core time
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-50}")
[ $# -eq 0 ] && counts=(50 200 500)
runs=${RUNS:-3}

source "$(dirname "$0")/sshd.sh"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# A tool that is one process tree (pssh, ansible): GNU time reports the
# largest RSS of any process in it. Prints "wall cpu rss_kib".
run_tree() {
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
  if grep -q "exited with non-zero" "$work/time"; then sed -i 1d "$work/time"; fi
  read -r wall ucpu scpu rss < "$work/time"
  echo "$wall $(awk -v a="$ucpu" -v b="$scpu" 'BEGIN{print a+b}') $rss"
}

# Runs a measuring function RUNS times; prints the medians.
report() {
  local name=$1 okpattern=$2; shift 2
  local walls=() cpus=() rsss=() extra=() ok=0
  for _ in $(seq 1 "$runs"); do
    read -r wall cpu rss more < <("$@")
    walls+=("$wall"); cpus+=("$cpu"); rsss+=("$rss"); extra+=("${more:-0}")
    ok=$(grep -c "$okpattern" "$work/out" || true)
  done
  printf '%-10s wall %7.2f s  cpu %7.2f s  peak rss %7s MiB' "$name" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" "$(mib "$(median "${rsss[@]}")")"
  [ "${extra[0]}" != 0 ] && printf ' (server) + %s MiB (client)' "$(mib "$(median "${extra[@]}")")"
  printf '   %s/%s ok (median of %s runs)\n' "$ok" "$n" "$runs"
}

# Gatehouse: the server does the work, the client streams; both are measured.
# Prints "wall cpu server_rss_kib client_rss_kib".
measure_gatehouse() {
  local data=$1
  /usr/bin/time -f "%e %U %S %M" -o "$work/server-time" "$GH" --data-dir "$data" serve --personal --idle-exit 600 >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 1 200); do [ -S "$data/gatehouse.sock" ] && break; sleep 0.05; done
  [ -S "$data/gatehouse.sock" ] || { echo "0 0 0 0"; return; }
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$GH" --data-dir "$data" request bench --wait >"$work/out" 2>"$work/err" || true
  "$GH" --data-dir "$data" shutdown >/dev/null
  wait "$server" || true
  if grep -q "exited with non-zero" "$work/time"; then sed -i 1d "$work/time"; fi
  read -r wall cuser csys crss < "$work/time"
  read -r _ suser ssys srss < "$work/server-time"
  echo "$wall $(awk -v a="$cuser" -v b="$csys" -v c="$suser" -v d="$ssys" 'BEGIN{print a+b+c+d}') $srss $crss"
}

for n in "${counts[@]}"; do
  data="$work/data-$n"; records="$work/records-$n.toml"; hosts="$work/hosts-$n"; inventory="$work/inventory-$n"
  : > "$hosts"
  echo "[bench]" > "$inventory"
  {
    echo '[[environment]]'; echo 'name = "bench"'
    echo '[[system]]'; echo 'name = "bench"'
    for i in $(seq 1 "$n"); do
      a=${addresses[$(( (i - 1) % ${#addresses[@]} ))]}
      echo '[[device]]'; echo "name = \"d$i\""; echo "address = \"$a\""; echo "port = $port"
      echo 'environment = "bench"'; echo 'system = "bench"'; echo "host_keys = [\"$hostkey\"]"
      echo "$user@$a:$port" >> "$hosts"
      echo "d$i ansible_host=$a ansible_port=$port" >> "$inventory"
    done
    echo '[[credential]]'; echo 'name = "k"'; echo "username = \"$user\""; echo "private_key_file = \"$work/id\""
    echo '[[template]]'; echo 'name = "t"'; echo 'executor = "ssh-script"'; echo 'content = "uname -n; echo ok"'
    echo '[[task]]'; echo 'name = "bench"'; echo 'template = "t"'; echo 'environment = "bench"'; echo 'system = "bench"'
    echo 'credential = "k"'; echo "parallelism = $n"; echo 'retries = 0'
    printf 'devices = ['; for i in $(seq 1 "$n"); do printf '"d%s",' "$i"; done; echo ']'
  } > "$records"
  if [ -n "${STORE_URL:-}" ]; then
    printf '[store]\nurl = "%s"\n' "$STORE_URL" > "$work/config-$n.toml"
    export GATEHOUSE_CONFIG="$work/config-$n.toml"
  fi
  "$GH" --data-dir "$data" import "$records" >/dev/null
  "$GH" --data-dir "$data" shutdown >/dev/null
  echo "-- $n devices (parallelism $n)"
  report gatehouse '\] ok$' measure_gatehouse "$data"
  [ "${GH_ONLY:-0}" = 1 ] && continue
  [ -n "$PSSH" ] || { echo "parallel-ssh not found (apt-get install pssh), or GH_ONLY=1"; exit 1; }
  pssh_p=$n; [ "${STOCK:-0}" = 1 ] && pssh_p=10
  report pssh 'SUCCESS' run_tree "$PSSH" -h "$hosts" -p "$pssh_p" -t 60 -i -x "-i $work/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes" 'uname -n; echo ok'
  if [ -n "$ANSIBLE" ]; then
    report ansible 'CHANGED' run_tree env ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_STDOUT_CALLBACK=oneline ANSIBLE_LOCAL_TEMP="$work/ansible-local" ANSIBLE_REMOTE_TEMP=/tmp/.ansible-bench \
      "$ANSIBLE" all -i "$inventory" -u "$user" --private-key "$work/id" -f "$n" -m shell -a 'uname -n; echo ok'
  fi
done
