#!/usr/bin/env bash
# Side-by-side snapshot figures for ferrodis and Debian's redis-server 7.0.15 on this machine:
#   - SAVE of 1,000,000 keys (16-byte values, DEBUG POPULATE): wall time of the command;
#   - load of that file at startup: the "DB loaded from disk: N seconds" log line;
#   - the longest pause clients see during a BGSAVE: redis-benchmark's max latency for INCR
#     from 50 clients (-P 1) while a BGSAVE of the same dataset runs, next to the same run
#     without a BGSAVE.
# Not a CI gate: the figures go in the README.
#
#   benches/snapshot.sh [keys]      (default 1000000; needs redis-server and redis-benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-1000000}
ferrodis=${FERRODIS_BIN:-target/release/ferrodis}
redis=${REDIS_BIN:-$(command -v redis-server)}
[ -x "$ferrodis" ] || cargo build --release
work=$(mktemp -d /tmp/ferrodis-snap.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
start() { # name binary port -> pid in $started
  mkdir -p "$work/$1"
  "$2" --port "$3" --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes \
    --dir "$work/$1" --logfile "$work/$1/log" &
  started=$!
  pids+=("$started")
  for _ in $(seq 600); do
    [ "$(redis-cli -p "$3" ping 2>/dev/null)" = PONG ] && return
    sleep 0.1
  done
  echo "$1 did not start" >&2; exit 1
}
stop() { # port pid
  redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true
  wait "$2" 2>/dev/null || true
}
max_latency() { # port -> max latency in ms of INCR from 50 clients
  redis-benchmark -p "$1" -t incr -c 50 -n 300000 -r 100000 --csv -q 2>/dev/null |
    tr -d '"' | awk -F, 'NR>1 {print $NF}'
}
bgsave_done() { # port
  for _ in $(seq 1200); do
    redis-cli -p "$1" info persistence | grep -q '^rdb_bgsave_in_progress:0' && return
    sleep 0.1
  done
}

run() { # name binary
  local name=$1 bin=$2 port t0 t1 loaded idle busy
  port=$(free_port)
  start "$name" "$bin" "$port"; local pid=$started
  redis-cli -p "$port" debug populate "$keys" key 16 >/dev/null
  t0=$(now); redis-cli -p "$port" save >/dev/null; t1=$(now)
  local save_s; save_s=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
  idle=$(max_latency "$port")
  redis-cli -p "$port" bgsave >/dev/null
  busy=$(max_latency "$port")
  bgsave_done "$port"
  stop "$port" "$pid"
  : > "$work/$name/log"
  start "$name" "$bin" "$port"; pid=$started
  loaded=$(grep -o 'DB loaded from disk: [0-9.]* seconds' "$work/$name/log" | awk '{print $5}')
  stop "$port" "$pid"
  echo "$name $save_s $loaded $idle $busy"
}

r=$(run redis "$redis")
f=$(run ferrodis "$ferrodis")
python3 - "$keys" "$r" "$f" <<'EOF'
import sys
keys = int(sys.argv[1])
r = sys.argv[2].split()
f = sys.argv[3].split()
def row(label, i, unit):
    a, b = float(r[i]), float(f[i])
    ratio = f"{b / a:.2f}x" if a else "-"
    print(f"{label:<44} {a:>10.3f}{unit} {b:>10.3f}{unit} {ratio:>7}")
print(f"{keys} keys of 16-byte values        redis-server   ferrodis   ratio")
row("SAVE", 1, " s")
row("load at startup", 2, " s")
row("max INCR latency, 50 clients, no save", 3, "ms")
row("max INCR latency, 50 clients, during BGSAVE", 4, "ms")
EOF
