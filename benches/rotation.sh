#!/usr/bin/env bash
# Password-change benchmark: one credential used on N devices (one real
# sshd on loopback, N device records), changed with `chpasswd` as root and
# verified by logging in with the new password, through `gatehouse
# credential change --wait`. Prints the wall time per run and per device,
# median of RUNS (default 3). Not a test: it never fails on a timing.
# Usage: [RUNS=3] benches/rotation.sh [N ...]   (default: 1 10 50)
# Needs root and openssh-server.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-1}")
[ $# -eq 0 ] && counts=(1 10 50)
runs=${RUNS:-3}
PASSWORDS=1 source "$(dirname "$0")/sshd.sh"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

account=gh-rot-bench
id "$account" >/dev/null 2>&1 || useradd -m -s /bin/sh "$account"
echo "$account:Bench-start-0001" | chpasswd

for n in "${counts[@]}"; do
  data="$work/data-$n"
  {
    echo '[[environment]]'; echo 'name = "bench"'
    echo '[[system]]'; echo 'name = "bench"'
    for i in $(seq 1 "$n"); do
      a=${addresses[$(( (i - 1) % ${#addresses[@]} ))]}
      echo '[[device]]'; echo "name = \"d$i\""; echo "address = \"$a\""; echo "port = $port"
      echo 'environment = "bench"'; echo 'system = "bench"'; echo "host_keys = [\"$hostkey\"]"
    done
    echo '[[credential]]'; echo 'name = "root"'; echo 'username = "root"'; echo "private_key_file = \"$work/id\""
    echo '[[credential]]'; echo 'name = "svc"'; echo "username = \"$account\""; echo 'password = "Bench-start-0001"'
    echo 'change_template = "chpasswd"'; echo 'change_with = "root"'
    echo '[[template]]'; echo 'name = "chpasswd"'; echo 'executor = "ssh-script"'; echo 'execution_type = "password-change"'
    echo 'content = "echo [#USERNAME#]:[#NEW_PASSWORD#] | chpasswd"'
    echo '[[template]]'; echo 'name = "t"'; echo 'executor = "ssh-script"'; echo 'content = "true"'
    echo '[[task]]'; echo 'name = "uses-svc"'; echo 'template = "t"'; echo 'environment = "bench"'; echo 'system = "bench"'
    echo 'credential = "svc"'
    printf 'devices = ['; for i in $(seq 1 "$n"); do printf '"d%s",' "$i"; done; echo ']'
  } > "$work/records-$n.toml"
  "$GH" --data-dir "$data" import "$work/records-$n.toml" >/dev/null
  walls=()
  for _ in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    "$GH" --data-dir "$data" credential change svc --wait >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    end=$(date +%s.%N)
    walls+=("$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')")
  done
  "$GH" --data-dir "$data" shutdown >/dev/null
  w=$(median "${walls[@]}")
  printf '%3s device(s): change + verify %6.2f s, %5.3f s per device (median of %s runs)\n' "$n" "$w" "$(awk -v w="$w" -v n="$n" 'BEGIN{print w/n}')" "$runs"
done
