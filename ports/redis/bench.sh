#!/usr/bin/env bash
# ports/redis/bench.sh [-B MVEDSUA_BUILD_DIR] [--reps N]
#
# redis-benchmark throughput of the first version of the redis port
# (redis-7.0.15-deb12u1), native and under the supervisor:
#   native      the same sources (Debian's patches of deb12u1, without the
#               port) built by redis' Makefile with the same compiler and
#               flags (clang-19 -O2 -g, MALLOC=libc, NO_MALLOC_USABLE_SIZE),
#               no plugin, no runtime:
#               an ordinary redis-server executable
#   supervised  redis-7.0.15-deb12u1.so under `mvedsua-run --control SOCK`,
#               single leader (no follower)
#   following   the same, during a multi-version update to the second version
#               (the outdated-leader stage: the leader records every call of
#               its four threads, the follower replays them); after the runs
#               the follower must still be following (or the row says what
#               ended it), then the update is promoted
# GET and SET, 50 loopback connections, random keys out of 100000, 64-byte
# values, not pipelined and pipelined (-P 16). Each repetition runs a fresh
# native server, then a fresh supervised one (interleaved); the report is the
# median of the repetitions (default 3) and the ratios to native.
# Needs ports/redis/build.sh to have run. Prints a markdown table.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mbuild=$root/build
reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    -B) mbuild=$(cd "$2" && pwd); shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    *) echo "usage: $0 [-B MVEDSUA_BUILD_DIR] [--reps N]" >&2; exit 2 ;;
  esac
done
out=$mbuild/ports/redis
first=$(head -1 "$out/versions.list" 2>/dev/null) && second=$(sed -n 2p "$out/versions.list") ||
  { echo "bench.sh: build the port first (ports/redis/build.sh)" >&2; exit 1; }
run=$mbuild/bin/mvedsua-run
ctl=$mbuild/bin/mvedsua-ctl
n_plain=${REDIS_BENCH_N_PLAIN:-200000}
n_pipe=${REDIS_BENCH_N_PIPE:-2000000}

# The native executable, built once.
native=$out/native/src/redis-server
if [ ! -x "$native" ]; then
  echo "bench.sh: building the native redis-server of $first" >&2
  rm -rf "$out/native"
  cp -a "$out"/pristine-* "$out/native"
  for p in $(awk -v v="$first" '$1 == v { for (i = 2; i <= NF; i++) print $i }' "$here/versions.txt"); do
    patch -d "$out/native" -p1 -s --no-backup-if-mismatch < "$out/native/debian/patches/$p"
  done
  make -C "$out/native/src" -j2 MALLOC=libc CC=/usr/lib/llvm-19/bin/clang OPTIMIZATION=-O2 \
    CFLAGS=-g REDIS_CFLAGS=-DNO_MALLOC_USABLE_SIZE redis-server > "$out/native.log" 2>&1 ||
    { echo "bench.sh: native build failed, see $out/native.log" >&2; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/redis-bench.XXXXXX")
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 "$root/test/lib/free-port.py"; }
wait_ping() {
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "bench.sh: the server on port $1 did not answer" >&2; return 1
}
# bench PORT -> "get_plain set_plain get_pipe set_pipe" requests per second
bench() {
  local port=$1 a b
  a=$(redis-benchmark -p "$port" -c 50 -r 100000 -d 64 -n "$n_plain" -t set,get --csv 2>/dev/null)
  b=$(redis-benchmark -p "$port" -c 50 -r 100000 -d 64 -n "$n_pipe" -P 16 -t set,get --csv 2>/dev/null)
  rps() { echo "$1" | awk -F'","' -v t="$2" '{ gsub(/"/, "", $1); gsub(/"/, "", $2) } $1 == t { print $2 }'; }
  echo "$(rps "$a" GET) $(rps "$a" SET) $(rps "$b" GET) $(rps "$b" SET)"
}
args=(--bind 127.0.0.1 --save '' --appendonly no --logfile '')
for i in $(seq "$reps"); do
  port=$(free_port)
  "$native" --port "$port" "${args[@]}" > "$work/native.log" 2>&1 & server=$!
  wait_ping "$port"
  echo "native $(bench "$port")" >> "$work/results"
  kill "$server"; wait "$server" || true; server=
  port=$(free_port)
  "$run" --control "$work/ctl.sock" "$out/$first.so" --port "$port" "${args[@]}" > "$work/sup.log" 2>&1 & server=$!
  wait_ping "$port"
  echo "supervised $(bench "$port")" >> "$work/results"
  kill "$server"; wait "$server" || true; server=
  rm -f "$work/ctl.sock"
  port=$(free_port)
  "$run" --control "$work/ctl.sock" "$out/$first.so" --port "$port" "${args[@]}" > "$work/mve.log" 2>&1 & server=$!
  wait_ping "$port"
  up=$("$ctl" --control "$work/ctl.sock" update "$out/$second.so" 2>&1) || true
  case "$up" in
    "caught up"*) ;;
    *) echo "bench.sh: the multi-version update did not start: $up" >&2; exit 1 ;;
  esac
  r=$(bench "$port")
  st=$("$ctl" --control "$work/ctl.sock" status --json)
  stage=$(echo "$st" | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["stage"] + ("" if s["stage"] == "outdated-leader" else ": " + str((s.get("last_update") or {}).get("reason"))))')
  peak=$(echo "$st" | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s.get("log", {}).get("peak_backlog_bytes", "?"))' 2>/dev/null || echo '?')
  echo "following $r" >> "$work/results"
  echo "  run $i: $stage, log peak $peak bytes" >> "$work/stages"
  "$ctl" --control "$work/ctl.sock" promote > /dev/null 2>&1 || true
  kill "$server"; wait "$server" || true; server=
  rm -f "$work/ctl.sock"
done
python3 - "$work/results" "$reps" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$work/stages" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
cols = ["GET", "SET", "GET -P 16", "SET -P 16"]
med = {m: [statistics.median(float(r[1 + i]) for r in rows if r[0] == m) for i in range(4)]
       for m in ("native", "supervised", "following")}
print("redis-benchmark, requests/s, median of %s interleaved runs (%s cores, load average %s)\n" % (sys.argv[2], sys.argv[3], sys.argv[4]))
print("| | " + " | ".join(cols) + " |")
print("|---|" + "---|" * len(cols))
for m in ("native", "supervised", "following"):
    print("| %s | " % m + " | ".join("%.0f" % v for v in med[m]) + " |")
for m in ("supervised", "following"):
    print("| %s / native | " % m + " | ".join("%.2f" % (s / n) for s, n in zip(med[m], med["native"])) + " |")
print("\nall runs:")
for r in rows:
    print("  " + " ".join(r))
print("\nthe follower after each run of the outdated-leader stage:")
print(open(sys.argv[5]).read().rstrip())
EOF
