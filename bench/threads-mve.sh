#!/usr/bin/env bash
# bench/threads-mve.sh [--build DIR] [--results DIR] [--quick]
#
# Issue 8's measure: a threaded server's throughput with 1, 2 and 4 worker
# threads in three configurations measured in this same run:
#   native         test/threads/Inputs/pool.c as a plain executable (no
#                  plugin, no runtime)
#   single_leader  the same built as pool.so, under mvedsua-run, no follower
#   follower       the same under mvedsua-run after a multi-version update to a
#                  copy of itself, in stage outdated-leader: the leader records
#                  every thread's calls in its lane, the follower replays them
# pool.c is main accepting plus WORKERS worker threads, each in epoll_wait;
# bench/lineload.c drives it closed-loop over loopback from 8 connections
# ("hit" -> one line). Each repetition runs the three configurations in turn,
# the order rotated from one repetition to the next; the report is the median
# of 5 repetitions (1 with --quick) and, for each ratio to native, the median
# of the repetitions' own ratios. Writes RESULTS/threads-mve.json and
# threads-mve.md. Timing is reported, never checked.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=$root/build
results=$here/results
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift ;;
    --results) results=$2; shift ;;
    --quick) quick=1 ;;
    *) echo "usage: $0 [--build DIR] [--results DIR] [--quick]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$results"
build=$(cd "$build" && pwd)
run=$build/bin/mvedsua-run
ctl=$build/bin/mvedsua-ctl
clang=/usr/lib/llvm-19/bin/clang
cmake --build "$build" --target mvedsua-run mvedsua-ctl MvedsuaPass mvedsua >/dev/null
reps=5 rounds=20000
[ "$quick" = 1 ] && reps=1 rounds=2000
work=$(mktemp -d)
trap 'pkill -f "$work/" 2>/dev/null || true; rm -rf "$work"' EXIT
src=$root/test/threads/Inputs/pool.c
"$clang" -O2 -pthread "$here/lineload.c" -o "$work/lineload"
for w in 1 2 4; do
  "$clang" -O2 -DVERSION=1 -DWORKERS=$w -I"$root/include" "$src" -o "$work/native-$w"
  "$clang" -g -O2 -fPIC -shared -fno-eliminate-unused-debug-types \
    -fpass-plugin="$build/lib/MvedsuaPass.so" -I"$root/include" \
    -L"$build/lib" -lmvedsua -DVERSION=1 -DWORKERS=$w "$src" -o "$work/pool-$w.so"
  cp "$work/pool-$w.so" "$work/same-$w.so"
done

port() { python3 "$root/test/lib/free-port.py"; }

# start CONFIG WORKERS -> prints the port once the server answers
start() {
  local cfg=$1 w=$2 p
  p=$(port)
  case $cfg in
    native) "$work/native-$w" "$p" >"$work/$cfg-$w.log" 2>&1 & ;;
    *) rm -f "$work/$cfg-$w.sock"
       "$run" --control "$work/$cfg-$w.sock" "$work/pool-$w.so" "$p" >"$work/$cfg-$w.log" 2>&1 & ;;
  esac
  for _ in $(seq 100); do
    grep -q ready "$work/$cfg-$w.log" 2>/dev/null && break
    sleep 0.05
  done
  if [ "$cfg" = follower ]; then
    "$ctl" --control "$work/$cfg-$w.sock" update "$work/same-$w.so" >"$work/$cfg-$w.update" 2>&1 \
      || { echo "threads-mve: the update of $cfg-$w failed: $(cat "$work/$cfg-$w.update")" >&2; exit 1; }
  fi
  echo "$p"
}

stop() { pkill -f "$work/$1-$2" 2>/dev/null || true; sleep 0.2; }

declare -A rate
configs=(native single_leader follower)
for r in $(seq "$reps"); do
  for w in 1 2 4; do
    for i in 0 1 2; do
      cfg=${configs[$(( (i + r) % 3 ))]}
      p=$(start "$cfg" "$w")
      out=$("$work/lineload" "$p" 8 "$rounds")
      if [ "$cfg" = follower ]; then
        st=$("$ctl" --control "$work/$cfg-$w.sock" status --json)
        echo "$st" | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["stage"]=="outdated-leader" else 1)' \
          || { echo "threads-mve: $cfg-$w left the outdated-leader stage: $st" >&2; exit 1; }
      fi
      stop "$cfg" "$w"
      rate[$cfg,$w,$r]=$(echo "$out" | awk '{print $6}')
      echo "rep $r workers $w $cfg: $out" >&2
    done
  done
done

python3 - "$results" "$reps" <<PY
import json, statistics, sys
results, reps = sys.argv[1], int(sys.argv[2])
raw = """$(for k in "${!rate[@]}"; do echo "$k ${rate[$k]}"; done)"""
rate = {}
for line in raw.split("\n"):
    if line.strip():
        key, v = line.split()
        cfg, w, r = key.split(",")
        rate[(cfg, int(w), int(r))] = float(v)
rows = []
for w in (1, 2, 4):
    row = {"workers": w}
    for cfg in ("native", "single_leader", "follower"):
        row[cfg] = statistics.median(rate[(cfg, w, r)] for r in range(1, reps + 1))
    for cfg in ("single_leader", "follower"):
        row[cfg + "_vs_native"] = statistics.median(
            rate[(cfg, w, r)] / rate[("native", w, r)] for r in range(1, reps + 1))
    rows.append(row)
json.dump({"repetitions": reps, "rows": rows}, open(results + "/threads-mve.json", "w"), indent=1)
with open(results + "/threads-mve.md", "w") as f:
    f.write("| workers | native req/s | no follower | same-version follower | no follower vs native | follower vs native |\n|---|---:|---:|---:|---:|---:|\n")
    for row in rows:
        f.write("| %d | %.0f | %.0f | %.0f | %.2f | %.2f |\n" % (
            row["workers"], row["native"], row["single_leader"], row["follower"],
            row["single_leader_vs_native"], row["follower_vs_native"]))
print(open(results + "/threads-mve.md").read())
PY
