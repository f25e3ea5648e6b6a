#!/usr/bin/env bash
# Playbook overhead: one short playbook on N devices through a real sshd on
# loopback, Gatehouse's ansible-playbook executor (request --wait, the
# server already up) against ansible-playbook run directly with the same
# inventory, key, forks and playbook. Each runs RUNS times (default 3) per
# size; prints the median wall time. Not a test: it never fails on a timing.
# Usage: [RUNS=3] benches/ansible.sh [N ...]   (default: 1 10 50)
# Needs root (sshd, a test account), openssh-server, ansible-core.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-1}")
[ $# -eq 0 ] && counts=(1 10 50)
runs=${RUNS:-3}
source "$(dirname "$0")/sshd.sh"
PLAYBOOK=$(command -v ansible-playbook) || { echo "ansible-playbook not found (apt-get install ansible-core)"; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

cat > "$work/play.yml" <<'YAML'
- gather_facts: false
  tasks:
    - name: name
      command: uname -n
YAML
# Run directly, the playbook names its hosts; Gatehouse fills them in.
sed 's/^- gather_facts: false/- hosts: all\n  gather_facts: false/' "$work/play.yml" > "$work/play-all.yml"
printf '[defaults]\nhost_key_checking = True\nretry_files_enabled = False\n[ssh_connection]\nssh_args = -o UserKnownHostsFile=%s/known_hosts -o ControlMaster=no\ntransfer_method = piped\n' "$work" > "$work/ansible.cfg"

for n in "${counts[@]}"; do
  data="$work/data-$n"; records="$work/records-$n.toml"; inventory="$work/inventory-$n"
  echo "[all]" > "$inventory"; : > "$work/known_hosts"
  {
    echo '[[environment]]'; echo 'name = "bench"'
    echo '[[system]]'; echo 'name = "bench"'
    for i in $(seq 1 "$n"); do
      a=${addresses[$(( (i - 1) % ${#addresses[@]} ))]}
      echo '[[device]]'; echo "name = \"d$i\""; echo "address = \"$a\""; echo "port = $port"
      echo 'environment = "bench"'; echo 'system = "bench"'; echo "host_keys = [\"$hostkey\"]"
      echo "d$i ansible_host=$a ansible_port=$port" >> "$inventory"
      echo "[$a]:$port $hostkey" >> "$work/known_hosts"
    done
    echo '[[credential]]'; echo 'name = "k"'; echo "username = \"$user\""; echo "private_key_file = \"$work/id\""
    echo '[[template]]'; echo 'name = "t"'; echo 'executor = "ansible-playbook"'
    echo "content = '''"; cat "$work/play.yml"; echo "'''"
    echo '[[task]]'; echo 'name = "bench"'; echo 'template = "t"'; echo 'environment = "bench"'; echo 'system = "bench"'
    echo 'credential = "k"'; echo "parallelism = $n"; echo 'retries = 0'
    printf 'devices = ['; for i in $(seq 1 "$n"); do printf '"d%s",' "$i"; done; echo ']'
  } > "$records"
  "$GH" --data-dir "$data" import "$records" >/dev/null
  gh=(); direct=(); ok=0
  for _ in $(seq 1 "$runs"); do
    t=$(now); "$GH" --data-dir "$data" request bench --wait >"$work/out" 2>&1 || true; gh+=("$(since "$t")")
    ok=$(grep -c 'succeeded' "$work/out" || true)
    t=$(now)
    ANSIBLE_CONFIG="$work/ansible.cfg" "$PLAYBOOK" -i "$inventory" -u "$user" --private-key "$work/id" -f "$n" "$work/play-all.yml" >"$work/direct" 2>&1 || true
    direct+=("$(since "$t")")
  done
  "$GH" --data-dir "$data" shutdown >/dev/null 2>&1 || true
  dok=$(grep -o 'ok=[0-9]*' "$work/direct" | grep -vc 'ok=0' || true)
  [ "$dok" = "$n" ] || { echo "ansible-playbook directly did not succeed on every device:"; tail -5 "$work/direct"; }
  g=$(median "${gh[@]}"); d=$(median "${direct[@]}")
  printf -- '-- %s device(s): gatehouse %6.2f s   ansible-playbook directly %6.2f s   overhead %+.2f s   (%s/%s succeeded; median of %s)\n' \
    "$n" "$g" "$d" "$(awk -v a="$g" -v b="$d" 'BEGIN{print a-b}')" "$ok" "$n" "$runs"
done
