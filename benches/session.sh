#!/usr/bin/env bash
# Privileged sessions against plain ssh, on one OpenSSH sshd on loopback:
# keystroke echo latency (a key written to the client's PTY until its echo
# comes back, KEYS times: median and 95th percentile) and throughput (`cat`
# of a SIZE-MiB file until its last line is on the client's PTY). Both
# clients log in with the same key as the same account; Gatehouse records,
# redacts and audits everything on the way. Not a test: it never fails on a
# timing.
# Usage: [KEYS=200] [SIZE=64] benches/session.sh     (needs root, openssh, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${KEYS:-200}
size=${SIZE:-64}
source "$(dirname "$0")/sshd.sh"
usermod -s /bin/bash "$user"
data="$work/data"
{
  echo '[[environment]]'; echo 'name = "bench"'; echo '[[system]]'; echo 'name = "bench"'
  echo '[[device]]'; echo 'name = "box"'; echo 'address = "127.0.0.1"'; echo "port = $port"
  echo 'environment = "bench"'; echo 'system = "bench"'; echo "host_keys = [\"$hostkey\"]"
  echo '[[credential]]'; echo 'name = "key"'; echo "username = \"$user\""; echo "private_key_file = \"$work/id\""
  echo 'device = "box"'
} > "$work/records.toml"
"$GH" --data-dir "$data" import "$work/records.toml" >/dev/null
big="/tmp/gh-bench-big-$$"
head -c $((size * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 > "$big"
echo "END-OF-FILE" >> "$big"
chmod 644 "$big"
trap 'rm -f "$big"; "$GH" --data-dir "$data" shutdown >/dev/null 2>&1 || true; kill $(cat "$work/sshd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

measure() {
  python3 - "$keys" "$big" "$@" <<'PY'
import fcntl, os, pty, select, statistics, struct, sys, termios, time
keys, big, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execvp(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
tail = b""
def read_until(token, limit=60):
    """Reads until `token` arrives (looking only at the recent bytes)."""
    global tail
    end = time.monotonic() + limit
    while token not in tail:
        left = end - time.monotonic()
        if left <= 0:
            sys.exit(f"timed out waiting for {token!r}; got {tail[-300:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            tail = (tail + os.read(fd, 1 << 16))[-4096:]
def quiet(t=0.05):
    """Reads until nothing comes for `t` seconds."""
    try:
        while select.select([fd], [], [], t)[0]:
            os.read(fd, 1 << 16)
    except OSError:  # the client has exited
        pass
def send(b):
    os.write(fd, b)
send(b"PS1='READY> '\r")
read_until(b"READY> ")
lat = []
for i in range(keys):
    if i % 20 == 0:
        send(b"\x15")
    quiet(0.02)
    c = b"abcdefghij"[i % 10:i % 10 + 1]
    tail = b""
    t = time.monotonic()
    send(c)
    read_until(c, 10)
    lat.append((time.monotonic() - t) * 1000)
send(b"\x15")
quiet(0.2)
tail = b""
t = time.monotonic()
send(f"cat {big}\r".encode())
read_until(b"END-OF-FILE\r\n", 300)
took = time.monotonic() - t
size = os.path.getsize(big)
send(b"exit\r")
quiet(0.5)
lat.sort()
print(f"echo median {statistics.median(lat):.2f} ms, p95 {lat[int(len(lat)*0.95)-1]:.2f} ms ({keys} keys); "
      f"cat {size/2**20:.0f} MiB in {took:.2f} s = {size/2**20/took:.1f} MiB/s")
PY
}

printf '%-10s ' "ssh:"
measure ssh -tt -q -i "$work/id" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "$user@127.0.0.1"
printf '%-10s ' "gatehouse:"
measure "$GH" --data-dir "$data" connect box
