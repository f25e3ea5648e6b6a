#!/usr/bin/env bash
# Fan-out benchmark: one short script on N devices through a real sshd on
# loopback, Gatehouse versus parallel-ssh (pssh), same key, same parallelism.
# Prints wall time and peak memory (RSS) of each. Not a test: it never fails
# on a timing. Usage: benches/fanout.sh [N ...]   (default: 50 200)
# Needs root (sshd, a test account), openssh-server, pssh and GNU time:
#   apt-get install -y openssh-server pssh time
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-50}")
[ $# -eq 0 ] && counts=(50 200)

cargo build --release --quiet
GH=$PWD/target/release/gatehouse
PSSH=$(command -v parallel-ssh || command -v pssh)
work=$(mktemp -d /tmp/gh-bench.XXXXXX)
chmod 755 "$work"
trap 'kill $(cat "$work/sshd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

user=gh-bench
id "$user" >/dev/null 2>&1 || useradd -m -s /bin/sh "$user"
# A locked account (no password at all) is refused by sshd even with a key.
usermod -p "*" "$user"
ssh-keygen -q -t ed25519 -N '' -f "$work/host" -C host
ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C client
cp "$work/id.pub" "$work/authorized_keys"; chmod 644 "$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addresses=(127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9 127.0.0.10)
mkdir -p /run/sshd
{
  echo "Port $port"
  for a in "${addresses[@]}"; do echo "ListenAddress $a"; done
  echo "HostKey $work/host"
  echo "PidFile $work/sshd.pid"
  echo "AuthorizedKeysFile $work/authorized_keys"
  echo "StrictModes no"
  echo "UsePAM no"
  echo "PasswordAuthentication no"
  # Raised for every tool alike, so that sshd is not what drops connections.
  echo "MaxStartups 1000:30:2000"
  echo "MaxSessions 100"
  echo "LogLevel ERROR"
} > "$work/sshd_config"
/usr/sbin/sshd -f "$work/sshd_config"
sleep 0.5
hostkey=$(cat "$work/host.pub")

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# pssh: one process tree; GNU time reports the largest RSS of any process in it.
measure_pssh() {
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
  if grep -q "exited with non-zero" "$work/time"; then echo "pssh failed:"; tail -3 "$work/err"; sed -i 1d "$work/time"; fi
  read -r wall ucpu scpu rss < "$work/time"
  printf '%-10s wall %7.2f s  cpu %7.2f s  peak rss %7s MiB\n' pssh "$wall" "$(awk -v a="$ucpu" -v b="$scpu" 'BEGIN{print a+b}')" "$(mib "$rss")"
}

# Gatehouse: the server does the work, the client streams; both are measured.
measure_gatehouse() {
  local data=$1
  /usr/bin/time -f "%e %U %S %M" -o "$work/server-time" "$GH" --data-dir "$data" serve --personal --idle-exit 600 >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 1 200); do [ -S "$data/gatehouse.sock" ] && break; sleep 0.05; done
  [ -S "$data/gatehouse.sock" ] || { echo "the server did not start:"; cat "$work/server-time"; return; }
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$GH" --data-dir "$data" request bench --wait >"$work/out" 2>"$work/err" || true
  "$GH" --data-dir "$data" shutdown >/dev/null
  wait "$server" || true
  if grep -q "exited with non-zero" "$work/time"; then echo "gatehouse failed:"; tail -3 "$work/err"; sed -i 1d "$work/time"; fi
  read -r wall cuser csys crss < "$work/time"
  read -r _ suser ssys srss < "$work/server-time"
  printf '%-10s wall %7.2f s  cpu %7.2f s  peak rss %7s MiB (server) + %s MiB (client)\n' gatehouse "$wall" \
    "$(awk -v a="$cuser" -v b="$csys" -v c="$suser" -v d="$ssys" 'BEGIN{print a+b+c+d}')" "$(mib "$srss")" "$(mib "$crss")"
}

for n in "${counts[@]}"; do
  data="$work/data-$n"; records="$work/records-$n.toml"; hosts="$work/hosts-$n"
  : > "$hosts"
  {
    echo '[[environment]]'; echo 'name = "bench"'
    echo '[[system]]'; echo 'name = "bench"'
    for i in $(seq 1 "$n"); do
      a=${addresses[$(( (i - 1) % ${#addresses[@]} ))]}
      echo '[[device]]'; echo "name = \"d$i\""; echo "address = \"$a\""; echo "port = $port"
      echo 'environment = "bench"'; echo 'system = "bench"'; echo "host_key = \"$hostkey\""
      echo "$user@$a:$port" >> "$hosts"
    done
    echo '[[credential]]'; echo 'name = "k"'; echo "username = \"$user\""; echo "private_key_file = \"$work/id\""
    echo '[[template]]'; echo 'name = "t"'; echo 'executor = "ssh-script"'; echo 'content = "uname -n; echo ok"'
    echo '[[task]]'; echo 'name = "bench"'; echo 'template = "t"'; echo 'environment = "bench"'; echo 'system = "bench"'
    echo 'credential = "k"'; echo "parallelism = $n"
    printf 'devices = ['; for i in $(seq 1 "$n"); do printf '"d%s",' "$i"; done; echo ']'
  } > "$records"
  "$GH" --data-dir "$data" import "$records" >/dev/null
  "$GH" --data-dir "$data" shutdown >/dev/null
  echo "-- $n devices (parallelism $n)"
  measure_gatehouse "$data"
  ok=$(grep -c '\] ok$' "$work/out" || true); echo "           $ok/$n ok"
  measure_pssh "$PSSH" -h "$hosts" -p "$n" -t 60 -i -x "-i $work/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes" 'uname -n; echo ok'
  ok=$(grep -c 'SUCCESS' "$work/out" || true); echo "           $ok/$n ok"
done
