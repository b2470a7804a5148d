#!/usr/bin/env bash
# bench/mcd-throughput.sh [--build DIR] [--results DIR] [--quick]
#
# The threaded cache's throughput under memcslap (issue 8): mcd with 1, 2 and
# 4 worker threads, in three configurations measured in this same run:
#   native         build/examples/mcd/mcd-native, no plugin, no runtime
#   single_leader  mcd-1.so under `mvedsua-run --control SOCK`, no follower
#   follower       the same after a multi-version update to a copy of itself,
#                  in stage outdated-leader: the leader records every thread's
#                  calls in its lane, the follower replays them (checked after
#                  each run: a run after which the follower is gone is failed)
# memcslap (libmemcached-tools) drives each server from 8 client threads over
# loopback, `--test=set` and `--test=get` (get loads its keys first, untimed);
# the figure is memcslap's own "Time to set/get N keys" as operations per
# second. Each repetition starts the nine servers side by side and runs every
# (threads, test) pair on the three configurations in turn, the order rotated
# from one repetition to the next, so that a slow spell of the shared machine
# falls on all; the report is the median of 5 repetitions (1 with --quick)
# and, for the ratios to native, the median of each repetition's own ratio.
# Writes RESULTS/mcd-throughput.json and mcd-throughput.md. Timing is
# reported, never checked.
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
    --full) quick=0 ;;
    *) echo "usage: $0 [--build DIR] [--results DIR] [--quick]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$results"
build=$(cd "$build" && pwd)
run=$build/bin/mvedsua-run
ctl=$build/bin/mvedsua-ctl
mcd=$build/examples/mcd
cmake --build "$build" --target mcd-examples mvedsua-run mvedsua-ctl >/dev/null 2>&1 || true
for f in "$run" "$ctl" "$mcd/mcd-native" "$mcd/mcd-1.so"; do
  [ -e "$f" ] || { echo "mcd-throughput: missing $f (build the mcd-examples target; needs libevent-dev)" >&2; exit 1; }
done
command -v memcslap >/dev/null || { echo "mcd-throughput: needs memcslap (Debian: libmemcached-tools)" >&2; exit 1; }

concurrency=8
if [ $quick -eq 1 ]; then
  reps=1 execute=300
else
  reps=${MCD_BENCH_REPS:-5} execute=${MCD_BENCH_EXECUTE:-10000}
fi
thread_counts=(1 2 4)

work=$(mktemp -d "${TMPDIR:-/tmp}/mcd-throughput.XXXXXX")
cp "$mcd/mcd-1.so" "$work/mcd-same.so" # the follower's version: mcd-1 again
servers=()
logs=()
# Stops every server; one that had already exited is reported with the end
# of its stderr in $work/failures.txt.
stop_all() {
  local i p
  for i in "${!servers[@]}"; do
    p=${servers[$i]}
    if ! kill -0 "$p" 2>/dev/null; then
      wait "$p" 2>/dev/null && st=0 || st=$?
      printf 'server %s exited early (status %s): %s\n' "${logs[$i]##*/}" "$st" \
        "$(tail -3 "${logs[$i]}" | tr -s ' \n' ' ')" >> "$work/failures.txt"
    fi
  done
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
  servers=()
  logs=()
}
cleanup() {
  stop_all
  [ -n "${MCD_BENCH_KEEP:-}" ] && echo "mcd-throughput: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
# killed or its output closed: still stop the servers (through EXIT)
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# Waits for mcd's "listening on 127.0.0.1:PORT" line in LOG; sets $port.
# Every server has a log of its own (a log reused by the next repetition
# could be read before the new server truncated it, giving the old port),
# which may not exist yet when this starts.
wait_listening() {
  local log=$1
  for _ in $(seq 400); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" 2>/dev/null | head -1 || true)
    [ -n "$port" ] && return 0
    sleep 0.025
  done
  echo "mcd-throughput: server did not start:" >&2; cat "$log" >&2; exit 1
}

# Starts a server (its stderr in LOG, stopped by stop_all) and waits for its
# port: sets $port.
start_server() {
  local log=$1
  shift
  "$@" 2>"$log" &
  servers+=($!)
  logs+=("$log")
  wait_listening "$log"
}

# One memcslap run; prints "OPS SECONDS" (operations per second from
# memcslap's timed phase) or "0 0" when it failed, whose why goes to
# $work/failures.txt (one line: the run, then memcslap's distinct error lines).
slap() {
  local port=$1 test=$2 label=$3 out rc=0
  out=$(memcslap --servers=127.0.0.1:"$port" --concurrency=$concurrency \
    --execute-number=$execute --test="$test" 2>&1) || rc=$?
  if [ $rc -ne 0 ] || grep -qi 'fail\|error' <<<"$out"; then
    printf '%s: exit %d: %s\n' "$label" "$rc" \
      "$(grep -i 'fail\|error' <<<"$out" | sort | uniq -c | head -3 | tr -s ' \n' ' ')" >> "$work/failures.txt"
    echo "0 0"
    return
  fi
  awk -v t="$test" '$1 == "Time" && $2 == "to" && $3 == t {
      n = $4; for (i = 1; i <= NF; i++) if ($i == "seconds.") s = $(i - 1)
      if (s > 0) printf "%.1f %s\n", n / s, s; else print "0 0"; found = 1 }
    END { if (!found) print "0 0" }' <<<"$out"
}

# The stage of the server behind SOCK, and the last update's reason.
stage_of() {
  "$ctl" --control "$1" status --json | python3 -c 'import json, sys
s = json.load(sys.stdin); u = s.get("last_update") or {}
print(s["stage"], (u.get("reason") or "").replace("\n", " ")[:300])'
}

: > "$work/rows.csv"
: > "$work/failures.txt"
configs=(native single_leader follower)
for rep in $(seq 1 "$reps"); do
  echo "mcd-throughput: repetition $rep of $reps: starting native, supervised and followed mcd with 1, 2, 4 workers" >&2
  declare -A ports=()
  for t in "${thread_counts[@]}"; do
    start_server "$work/native-$t-$rep.log" "$mcd/mcd-native" -p 0 -t "$t"
    ports[native,$t]=$port
    rm -f "$work/ctl-$t.sock"
    start_server "$work/single-$t-$rep.log" "$run" --control "$work/ctl-$t.sock" "$mcd/mcd-1.so" -p 0 -t "$t"
    ports[single_leader,$t]=$port
    sock=$work/follower-$t.sock
    rm -f "$sock"
    start_server "$work/follower-$t-$rep.log" "$run" --control "$sock" "$mcd/mcd-1.so" -p 0 -t "$t"
    ports[follower,$t]=$port
    "$ctl" --control "$sock" update "$work/mcd-same.so" >"$work/follower-$t.update" 2>&1 \
      || { echo "mcd-throughput: the same-version update of mcd with $t workers failed: $(cat "$work/follower-$t.update")" >&2; exit 1; }
  done
  case $((rep % 3)) in
    1) order=(native single_leader follower) ;;
    2) order=(single_leader follower native) ;;
    0) order=(follower native single_leader) ;;
  esac
  for t in "${thread_counts[@]}"; do
    for test in set get; do
      for c in "${order[@]}"; do
        echo "mcd-throughput: repetition $rep of $reps: $t workers, $test, $c" >&2
        label="repetition $rep, $c, $t workers, $test"
        read -r ops secs < <(slap "${ports[$c,$t]}" "$test" "$label")
        if [ "$c" = follower ]; then
          read -r st why < <(stage_of "$work/follower-$t.sock")
          if [ "$st" != outdated-leader ]; then
            printf '%s: the follower is gone (stage %s): %s\n' "$label" "$st" "$why" >> "$work/failures.txt"
            ops=0 secs=0
          fi
        fi
        echo "$rep,$c,$t,$test,$ops,$secs" >> "$work/rows.csv"
      done
    done
  done
  stop_all
  unset ports
done

machine=$(printf '{"cores": %d, "kernel": "%s", "cpu": "%s"}' "$(nproc)" "$(uname -r)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")
python3 - "$machine" "$work/rows.csv" "$results" "$concurrency" "$execute" "$reps" "$quick" \
  "$(memcslap --version 2>&1 | head -1)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$work/failures.txt" <<'PY'
import csv, json, statistics, sys
machine = json.loads(sys.argv[1])
rows = list(csv.reader(open(sys.argv[2])))
results = sys.argv[3]
concurrency, execute, reps, quick = (int(x) for x in sys.argv[4:8])
tool, load = sys.argv[8], sys.argv[9]
failures = [l.strip() for l in open(sys.argv[10]) if l.strip()]
ops = {}
for rep, config, threads, test, o, secs in rows:
    ops[(int(rep), config, int(threads), test)] = float(o)
out = []
failed = sum(1 for v in ops.values() if v <= 0)
for threads in (1, 2, 4):
    for test in ("set", "get"):
        e = {"threads": threads, "test": test}
        for config in ("native", "single_leader", "follower"):
            s = [ops[k] for k in sorted(ops) if k[1:] == (config, threads, test) and ops[k] > 0]
            e[config] = {"ops_per_s": statistics.median(s) if s else None, "runs": s}
        for config in ("single_leader", "follower"):
            ratios = []
            for rep in range(1, reps + 1):
                n = ops.get((rep, "native", threads, test), 0)
                l = ops.get((rep, config, threads, test), 0)
                if n > 0 and l > 0:
                    ratios.append(l / n)
            e[config + "_vs_native"] = round(statistics.median(ratios), 3) if ratios else None
            e[config + "_ratios"] = [round(r, 3) for r in ratios]
        out.append(e)
doc = {
    "benchmark": "mcd-throughput",
    "machine": machine,
    "load_average_at_end": load,
    "workload": {"tool": tool, "client_threads": concurrency,
                 "operations_per_client_thread": execute, "repetitions": reps,
                 "quick": bool(quick), "tests": ["set", "get"],
                 "statistic": "median of the repetitions; ratio: median of each repetition's ratio"},
    "configurations": {
        "native": "build/examples/mcd/mcd-native -t N",
        "single_leader": "mcd-1.so -t N under mvedsua-run --control SOCK, no follower",
        "follower": "the same after mvedsua-ctl update to a copy of mcd-1.so: a same-version "
                    "follower in stage outdated-leader"},
    "anchors": {"mvedsua_paper_memcached_single_leader_slower": "9%",
                "mvedsua_paper_memcached_leader_follower_slower": "52%"},
    "failed_runs": failed,
    "failures": failures,
    "results": out,
}
json.dump(doc, open(results + "/mcd-throughput.json", "w"), indent=2)

def pct(r):
    return "n/a" if r is None else "%+.1f%%" % ((r - 1) * 100)
def cell(x):
    return "failed" if not x["ops_per_s"] else "%.0f/s" % x["ops_per_s"]
with open(results + "/mcd-throughput.md", "w") as md:
    md.write("### mcd throughput under memcslap (native vs mvedsua-run, no follower vs same-version follower)\n\n")
    md.write("%d cores, %s, Linux %s; load average %s at the end. %s, %d client threads over "
             "loopback, %d operations each per test; median of %d repetition(s), the three "
             "configurations side by side and each test run on each in turn; a ratio is the "
             "median of each repetition's ratio to its own native run.%s\n\n" % (
                 machine["cores"], machine["cpu"], machine["kernel"], load, tool, concurrency,
                 execute, reps, " %d run(s) failed (left out)." % failed if failed else ""))
    md.write("| worker threads | test | native | no follower | same-version follower | no follower vs native | follower vs native | per repetition (no follower; follower) |\n")
    md.write("|---:|---|---:|---:|---:|---:|---:|---|\n")
    for e in out:
        md.write("| %d | %s | %s | %s | %s | %s | %s | %s; %s |\n" % (
            e["threads"], e["test"], cell(e["native"]), cell(e["single_leader"]), cell(e["follower"]),
            pct(e["single_leader_vs_native"]), pct(e["follower_vs_native"]),
            " ".join("%.2f" % r for r in e["single_leader_ratios"]),
            " ".join("%.2f" % r for r in e["follower_ratios"])))
    md.write("| | *MVEDSUa (paper), memcached* | | | | *9% slower* | *52% slower* | |\n")
    if failures:
        md.write("\nFailed runs (memcslap's distinct error lines):\n\n")
        for f in failures:
            md.write("- %s\n" % f)
PY
cat "$results/mcd-throughput.md"
