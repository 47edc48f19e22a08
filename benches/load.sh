#!/usr/bin/env bash
# Side-by-side load: redis-benchmark against ferrodis and Debian's redis-server 7.0.15 on this
# machine, alternating servers between rounds, then the ratio ferrodis / redis-server for each
# test. Also the memory per key for 1,000,000 keys of 16-byte values (DEBUG POPULATE), from
# INFO used_memory. Not a CI gate: the figures go in the README.
#
#   benches/load.sh [rounds]        (default 3 rounds; needs redis-server and redis-benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${REQUESTS:-200000}
ferrodis=${FERRODIS_BIN:-target/release/ferrodis}
redis=${REDIS_BIN:-$(command -v redis-server)}
[ -x "$ferrodis" ] || cargo build --release
work=$(mktemp -d /tmp/ferrodis-bench.XXXXXX)
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
  "$2" --port "$3" --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes \
    --dir "$work/$1" --logfile "$work/$1/log" &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$3" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}
rp=$(free_port); start redis "$redis" "$rp"
fp=$(free_port); start ferrodis "$ferrodis" "$fp"

declare -A sum
bench() { # port pipeline -> lines "TEST rps"
  redis-benchmark -p "$1" -t set,get -P "$2" -c 50 -n "$requests" -r 100000 -d 16 --csv -q 2>/dev/null |
    tr -d '"' | awk -F, 'NR>1 {print $1, $2}'
}
for r in $(seq "$rounds"); do
  for p in 1 16; do
    for who in redis ferrodis; do
      port=$rp; [ "$who" = ferrodis ] && port=$fp
      while read -r t rps; do
        k="$who|$t|P$p"; sum[$k]=$(python3 -c "print(${sum[$k]:-0} + $rps)")
      done < <(bench "$port" "$p")
    done
  done
done

printf '%-6s %-4s %14s %14s %7s\n' test pipe redis-server ferrodis ratio
for p in 1 16; do
  for t in SET GET; do
    r=${sum[redis|$t|P$p]:-0}; f=${sum[ferrodis|$t|P$p]:-0}
    python3 -c "r=$r/$rounds; f=$f/$rounds; print(f'{\"$t\":<6} {\"P$p\":<4} {r:14.0f} {f:14.0f} {f/r if r else 0:7.2f}x')"
  done
done

mem_per_key() { # port
  redis-cli -p "$1" flushall >/dev/null
  local before after
  before=$(redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
  redis-cli -p "$1" debug populate 1000000 key 16 >/dev/null
  after=$(redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
  python3 -c "print(f'{($after - $before) / 1e6:.1f}')"
}
echo "bytes per key, 1,000,000 keys of 16-byte values:"
echo "  redis-server $(mem_per_key "$rp")"
echo "  ferrodis     $(mem_per_key "$fp")"
