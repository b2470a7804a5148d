#!/usr/bin/env bash
# examples/demo.sh BUILD_DIR: the main job, on the bundled kvd example.
#
# Starts kvd-1 under the mvedsua supervisor, fills it through redis-cli, puts
# it under a real redis-benchmark load, shows what the supervisor and the
# state registry say, updates it live when the build supports it, checks that
# every key survived, and tells the story with timestamps.
set -euo pipefail
build=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kvd=$build/examples/kvd
run=$build/bin/mvedsua-run
ctl=$build/bin/mvedsua-ctl
keys=${DEMO_KEYS:-100000}

work=$(mktemp -d "${TMPDIR:-/tmp}/mvedsua-demo.XXXXXX")
sock=$work/kvd.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s.%N)
stamp() { printf '[%6.2fs] ' "$(echo "$(date +%s.%N) - $t0" | bc)"; }
story() { stamp; printf '%s\n' "$*"; }
cli() { redis-cli -p "$port" "$@"; }

story "starting kvd-1 under the supervisor: mvedsua-run --control $sock kvd-1.so --port $port"
"$run" --control "$sock" "$kvd/kvd-1.so" --port "$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening" "$work/server.log" 2>/dev/null && [ -S "$sock" ] && break
  sleep 0.05
done
grep -q "listening" "$work/server.log" || { cat "$work/server.log"; exit 1; }
story "supervisor pid $pid; status:"
"$ctl" --control "$sock" status | sed 's/^/           /'

story "filling it with $keys keys (redis-cli --pipe)"
seq 1 "$keys" | awk '{ printf "SET key:%d value-%d\r\n", $1, $1 * 7 }' |
  redis-cli -p "$port" --pipe | tail -1 | sed 's/^/           /'
story "DBSIZE = $(cli dbsize)"
sample() { seq 1 $((keys / 2000 > 0 ? keys / 2000 : 1)) "$keys" | sed 's/^/GET key:/' | cli | md5sum | cut -c1-16; }
sum_before=$(sample)
story "checksum of a 2000-key sample: $sum_before"

story "what an update would migrate (mvedsua-run --list-state kvd-1.so):"
"$run" --list-state "$kvd/kvd-1.so" | grep -E '^(version|module|  global|  static)' | sed 's/^/           /'

story "client load: redis-benchmark -c 20 -n 200000 -t get,set -P 16 (its own keys)"
redis-benchmark -p "$port" -q -c 20 -n 200000 -t get,set -P 16 2>&1 | tr '\r' '\n' |
  grep -E 'requests per second' | sed 's/^/           /'

if "$ctl" --help | grep -q '^  update'; then
  story "updating live: mvedsua-ctl update --inplace kvd-1.1.so"
  "$ctl" --control "$sock" update --inplace "$kvd/kvd-1.1.so" | sed 's/^/           /'
  "$ctl" --control "$sock" status | sed 's/^/           /'
else
  story "(this build has no live update command yet: see README, 'What works today')"
fi

sum_after=$(sample)
story "DBSIZE = $(cli dbsize); checksum of the same sample: $sum_after"
[ "$sum_before" = "$sum_after" ] || { story "ERROR: keys changed"; exit 1; }

story "stopping: SIGTERM to the supervisor is forwarded to the program"
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e; pid=
story "the service exited with status $rc"
story "read more: README.md, docs/building.md, docs/runtime.md, docs/kvd.md"
