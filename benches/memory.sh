#!/usr/bin/env bash
# Memory side by side: 1,000,000 small hashes (5 fields), sets (5 members) and sorted sets
# (5 members) loaded with redis-cli --pipe into ferrodis and into Debian's redis-server
# 7.0.15, one type at a time, and the growth of INFO used_memory per key on each. Not a CI
# gate: the figures go in the README.
#
#   benches/memory.sh [keys]        (default 1000000; needs redis-server and redis-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-1000000}
ferrodis=${FERRODIS_BIN:-target/release/ferrodis}
redis=${REDIS_BIN:-$(command -v redis-server)}
[ -x "$ferrodis" ] || cargo build --release
work=$(mktemp -d /tmp/ferrodis-membench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # name binary port
  mkdir -p "$work/$1"
  "$2" --port "$3" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work/$1" --logfile "$work/$1/log" &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$3" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}
rp=$(free_port); start redis "$redis" "$rp"
fp=$(free_port); start ferrodis "$ferrodis" "$fp"

# The load, as RESP commands: key names like "hash:123456", fields/members f0..f4 with
# 8-byte values, scores 1..5.
gen() { # type
  python3 - "$1" "$keys" <<'EOF'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
batch = []
for i in range(n):
    key = f"{kind}:{i}"
    if kind == "hash":
        args = ["HSET", key]
        for f in range(5):
            args += [f"f{f}", f"v{i:07d}"[:8]]
    elif kind == "set":
        args = ["SADD", key] + [f"m{f}{i:06d}"[:8] for f in range(5)]
    else:
        args = ["ZADD", key]
        for f in range(5):
            args += [f + 1, f"m{f}{i:06d}"[:8]]
    batch.append(cmd(*args))
    if len(batch) == 10000:
        out.write(b"".join(batch))
        batch = []
out.write(b"".join(batch))
EOF
}

used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }

printf '%-6s %16s %16s %7s\n' type redis-server ferrodis ratio
for kind in ${TYPES:-hash set zset}; do
  gen "$kind" > "$work/$kind.resp"
  declare -A per
  for who in redis ferrodis; do
    port=$rp; [ "$who" = ferrodis ] && port=$fp
    redis-cli -p "$port" flushall >/dev/null
    before=$(used "$port")
    redis-cli -p "$port" --pipe < "$work/$kind.resp" >/dev/null
    after=$(used "$port")
    per[$who]=$(python3 -c "print(($after - $before) / $keys)")
    encoding=$(redis-cli -p "$port" object encoding "$kind:0")
    echo "  $who $kind:0 encoding=$encoding" >&2
  done
  python3 -c "r=${per[redis]}; f=${per[ferrodis]}; print(f'{\"$kind\":<6} {r:12.1f} B/key {f:12.1f} B/key {f/r:6.2f}x')"
  rm -f "$work/$kind.resp"
done
