# Shared by the benchmark scripts: builds the release binary and starts one
# OpenSSH sshd on a free port listening on 127.0.0.1-127.0.0.10, with a test
# account, host and client keys, and MaxStartups raised for every tool alike
# (STOCK=1 keeps OpenSSH's stock MaxStartups 10:30:100, as real fleets run it).
# Sets GH, PSSH, work, user, port, addresses, hostkey. Sourced, not run.
cargo build --release --quiet
GH=$PWD/target/release/gatehouse
PSSH=$(command -v parallel-ssh || command -v pssh || true)
ANSIBLE=$(command -v ansible || true)
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
  # PASSWORDS=1 lets passwords in too (the password-change benchmark verifies by one).
  if [ "${PASSWORDS:-0}" = 1 ]; then echo "PasswordAuthentication yes"; else echo "PasswordAuthentication no"; fi
  # Raised for every tool alike, so that sshd is not what drops connections;
  # or left as shipped, to see which tool copes with it.
  [ "${STOCK:-0}" = 1 ] || echo "MaxStartups 1000:30:2000"
  echo "MaxSessions 100"
  echo "LogLevel ERROR"
} > "$work/sshd_config"
/usr/sbin/sshd -f "$work/sshd_config"
sleep 0.5
hostkey=$(cat "$work/host.pub")

