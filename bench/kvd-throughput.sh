#!/usr/bin/env bash
# bench/kvd-throughput.sh [--build DIR] [--results DIR] [--quick]
#
# kvd's throughput and latency under redis-benchmark (issues 5 and 7): GET and
# SET from 20 loopback connections, not pipelined and pipelined (-P 16), in
# three configurations measured in this same run:
#   native           build/examples/kvd/kvd-native, no plugin, no runtime
#   single_leader    kvd-1.so under `mvedsua-run --control SOCK`, no follower
#   outdated_leader  another kvd-1.so, after `mvedsua-ctl update kvd-1.so`: a
#                    follower of the same version attached and following
# Each repetition starts the three side by side on fresh servers and measures
# every test on the three in turn (the order rotated from one repetition to
# the next), so a slow spell of the shared machine falls on all three; the
# report is the median of the repetitions (5, or 1 with --quick). Before the
# follower's measurement its stage must be
# outdated-leader (status --json); afterwards the follower must still be
# there (same pid, not rolled back), else the repetition is marked invalid
# and left out of the medians.
# Beside each rate: the CPU time the server's processes used per request
# (time on a CPU of every thread of the program, and of the supervisor and
# the follower where they exist: /proc/PID/task/*/schedstat): what the follower costs the machine, a
# figure a busy machine disturbs far less than a rate.
# Writes RESULTS/kvd-throughput.json and kvd-throughput.md. Timing is
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
    *) echo "usage: $0 [--build DIR] [--results DIR] [--quick]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$results"
build=$(cd "$build" && pwd)
run=$build/bin/mvedsua-run
ctl=$build/bin/mvedsua-ctl
kvd=$build/examples/kvd
for f in "$run" "$ctl" "$kvd/kvd-native" "$kvd/kvd-1.so"; do
  [ -e "$f" ] || { echo "kvd-throughput: missing $f (build the kvd-examples target)" >&2; exit 1; }
done
command -v redis-benchmark >/dev/null || { echo "kvd-throughput: needs redis-benchmark" >&2; exit 1; }

clients=20 pipeline=16 keyspace=100000
if [ $quick -eq 1 ]; then
  reps=1 n_plain=2000 n_pipe=20000
else
  reps=5 n_plain=${KVD_BENCH_N_PLAIN:-250000} n_pipe=${KVD_BENCH_N_PIPE:-3000000}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-throughput.XXXXXX")
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT

# Waits for kvd's "listening on 127.0.0.1:PORT" line in LOG; sets $port.
# Every server has a log of its own (a log reused by the next repetition
# could be read before the new server truncated it, giving the old port of
# a server that is gone), which may not exist yet when this starts.
wait_listening() {
  local log=$1
  for _ in $(seq 400); do
    if grep -q 'listening on' "$log" 2>/dev/null; then
      port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
      [ -n "$port" ] && return 0
    fi
    sleep 0.025
  done
  echo "kvd-throughput: server did not start:" >&2; cat "$log" >&2; exit 1
}

# Nanoseconds on a CPU used so far by the live threads of the pids given.
cpu_ns() {
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
    awk '{t += $1} END {printf "%.0f\n", t}'
}

servers=()
stop_all() {
  local p
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
  servers=()
}

# One test (set or get, plain or p16) against PORT; prints redis-benchmark's
# CSV row prefixed by the mode ("plain" or "p16").
bench_one() {
  local port=$1 mode=$2 test=$3
  if [ "$mode" = plain ]; then
    redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" -n "$n_plain" \
      -r "$keyspace" -t "$test" --csv 2>/dev/null | grep -v '^"test"' | sed 's/^/"plain",/'
  else
    redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" -n "$n_pipe" \
      -r "$keyspace" -P "$pipeline" -t "$test" --csv 2>/dev/null | grep -v '^"test"' | sed 's/^/"p16",/'
  fi
}

status() { "$ctl" --control "$1" status --json; }
field() { python3 -c 'import json,sys; s=json.load(sys.stdin); print(s.get(sys.argv[1]) if s.get(sys.argv[1]) is not None else "none")' "$1"; }

# Starts a supervised kvd-1.so with control socket SOCK, log LOG; sets $port
# and appends its pid to servers.
start_supervised() {
  local sock=$1 log=$2
  rm -f "$sock"
  "$run" --control "$sock" "$kvd/kvd-1.so" --port 0 --bind 127.0.0.1 2>"$log" &
  servers+=($!)
  supervisor=$!
  wait_listening "$log"
  for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.025; done
}

: > "$work/rows.csv"
: > "$work/checks.jsonl"
configs=(native single_leader outdated_leader)
for rep in $(seq 1 "$reps"); do
  # The three configurations run side by side, each on a fresh server; every
  # test is measured on the three in turn (the order rotated from one
  # repetition to the next), so that a slow spell of the machine falls on all.
  echo "kvd-throughput: repetition $rep of $reps: starting native, single leader, leader + follower" >&2
  "$kvd/kvd-native" --port 0 --bind 127.0.0.1 2>"$work/native-$rep.log" &
  servers+=($!)
  declare -A ports=() pids=()
  pids[native]=$!
  wait_listening "$work/native-$rep.log"
  ports[native]=$port
  start_supervised "$work/single.sock" "$work/single-$rep.log"
  ports[single_leader]=$port
  status "$work/single.sock" > "$work/single.json"
  stage0=$(field stage < "$work/single.json")
  pids[single_leader]="$supervisor $(field leader_pid < "$work/single.json")"
  start_supervised "$work/ctl.sock" "$work/mve-$rep.log"
  ports[outdated_leader]=$port
  reply=$("$ctl" --control "$work/ctl.sock" update --timeout 1m "$kvd/kvd-1.so" 2>&1) || true
  status "$work/ctl.sock" > "$work/before.json"
  pids[outdated_leader]="$supervisor $(field leader_pid < "$work/before.json") $(field follower_pid < "$work/before.json")"
  stage_before=$(field stage < "$work/before.json")
  shift_by=$(( (rep - 1) % 3 ))
  order=("${configs[@]:$shift_by}" "${configs[@]:0:$shift_by}")
  for mt in "plain set" "plain get" "p16 set" "p16 get"; do
    for c in "${order[@]}"; do
      [ "$c" = outdated_leader ] && [ "$stage_before" != outdated-leader ] && continue
      echo "kvd-throughput: repetition $rep of $reps: $mt, $c" >&2
      t0=$(cpu_ns $(printf '%s\n' ${pids[$c]} | sort -u))
      row=$(bench_one "${ports[$c]}" $mt)
      t1=$(cpu_ns $(printf '%s\n' ${pids[$c]} | sort -u))
      [ -n "$row" ] && echo "$rep,\"$c\",$row,$((t1 - t0))" >> "$work/rows.csv"
    done
  done
  status "$work/ctl.sock" > "$work/after.json"
  stop_all
  unset ports pids
  python3 - "$rep" "$stage0" "$reply" "$work/before.json" "$work/after.json" >> "$work/checks.jsonl" <<'EOF'
import json, sys
rep, stage0, reply = int(sys.argv[1]), sys.argv[2], sys.argv[3]
before, after = (json.load(open(p)) for p in sys.argv[4:6])
last = after.get("last_update") or {}
valid = (before["stage"] == "outdated-leader" and before.get("follower_pid")
         and after["stage"] == "outdated-leader"
         and after.get("follower_pid") == before.get("follower_pid")
         and last.get("outcome") == "in-progress")
print(json.dumps({
    "rep": rep, "stage_without_follower": stage0, "update_reply": reply.strip(),
    "stage_before": before["stage"], "follower_pid_before": before.get("follower_pid"),
    "stage_after": after["stage"], "follower_pid_after": after.get("follower_pid"),
    "outcome_after": last.get("outcome"), "reason_after": last.get("reason"),
    "peak_backlog_bytes": (after.get("log") or {}).get("peak_backlog_bytes"),
    "follower_stayed": bool(valid), "valid": bool(valid)}))
EOF
done

machine=$(printf '{"cores": %d, "kernel": "%s", "cpu": "%s"}' "$(nproc)" "$(uname -r)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")
python3 - "$machine" "$work/rows.csv" "$work/checks.jsonl" "$results" \
  "$clients" "$pipeline" "$n_plain" "$n_pipe" "$reps" "$keyspace" "$quick" \
  "$(redis-benchmark --version | head -1)" <<'EOF'
import csv, json, statistics, sys
machine = json.loads(sys.argv[1])
rows = list(csv.reader(open(sys.argv[2])))
checks = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
results = sys.argv[4]
clients, pipeline, n_plain, n_pipe, reps, keyspace, quick = (int(x) for x in sys.argv[5:12])
rb_version = sys.argv[12]
valid_reps = {c["rep"] for c in checks if c["valid"]}
configs = ["native", "single_leader", "outdated_leader"]
tests = [("plain", "SET"), ("plain", "GET"), ("p16", "SET"), ("p16", "GET")]
# rows: rep, config, mode, test, rps, avg, min, p50, p95, p99, max,
# CPU nanoseconds of the server's processes during the test
samples = {}
for r in rows:
    rep, config, mode, test = int(r[0]), r[1], r[2], r[3]
    if rep not in valid_reps:
        continue
    vals = dict(zip(["rps", "avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"],
                    (float(x) for x in r[4:11])))
    requests = n_pipe if mode == "p16" else n_plain
    vals["cpu_us_per_request"] = float(r[11]) / 1e3 / requests
    samples.setdefault((config, mode, test), []).append(vals)
out = []
for mode, test in tests:
    entry = {"test": test, "pipeline": pipeline if mode == "p16" else 1,
             "requests": n_pipe if mode == "p16" else n_plain}
    for config in configs:
        s = samples.get((config, mode, test), [])
        if not s:
            entry[config] = None
            continue
        entry[config] = {k: statistics.median(x[k] for x in s) for k in s[0]}
        entry[config]["runs"] = len(s)
        entry[config]["rps_all"] = [x["rps"] for x in s]
    def ratio(a, b):
        if entry[a] and entry[b]:
            return round(entry[a]["rps"] / entry[b]["rps"], 3)
        return None
    entry["single_leader_vs_native"] = ratio("single_leader", "native")
    entry["outdated_leader_vs_native"] = ratio("outdated_leader", "native")
    entry["outdated_leader_vs_single_leader"] = ratio("outdated_leader", "single_leader")
    def cpu_ratio(a, b):
        if entry[a] and entry[b] and entry[b]["cpu_us_per_request"]:
            return round(entry[a]["cpu_us_per_request"] / entry[b]["cpu_us_per_request"], 3)
        return None
    entry["cpu_single_leader_vs_native"] = cpu_ratio("single_leader", "native")
    entry["cpu_outdated_leader_vs_native"] = cpu_ratio("outdated_leader", "native")
    out.append(entry)
doc = {
    "benchmark": "kvd-throughput",
    "machine": machine,
    "workload": {"tool": rb_version, "clients": clients, "keyspace": keyspace,
                 "requests_plain": n_plain, "requests_pipelined": n_pipe,
                 "pipeline": pipeline, "repetitions": reps, "quick": bool(quick),
                 "statistic": "median of the valid repetitions"},
    "configurations": {
        "native": "build/examples/kvd/kvd-native",
        "single_leader": "kvd-1.so under mvedsua-run --control SOCK, no follower",
        "outdated_leader": "another kvd-1.so under mvedsua-run, after mvedsua-ctl update kvd-1.so (same-version follower, stage outdated-leader)"},
    "anchors": {"mvedsua_paper_single_leader_slower": "3-9%",
                "mvedsua_paper_leader_follower_slower": "42-52%",
                "goal_single_leader": "within 1% of native",
                "goal_leader_follower": "within 20% of native"},
    "checks": checks,
    "all_valid": len(valid_reps) == len(checks),
    "results": out,
}
json.dump(doc, open(results + "/kvd-throughput.json", "w"), indent=2)

def pct(r):
    return "n/a" if r is None else "%+.1f%%" % ((r - 1) * 100)
def cell(e):
    if not e:
        return "invalid"
    return "%.0f/s (p50 %.2f, p99 %.2f, max %.1f ms)" % (e["rps"], e["p50_ms"], e["p99_ms"], e["max_ms"])
with open(results + "/kvd-throughput.md", "w") as md:
    md.write("### kvd throughput under redis-benchmark (native, single leader, leader + follower)\n\n")
    md.write("%d cores, %s, Linux %s. %s, %d connections over loopback, random keys "
             "among %d, %d requests per test (%d pipelined with -P %d); median of %d "
             "repetition(s), the three configurations side by side, each test run on the three "
             "in turn. "
             "Leader + follower: after `mvedsua-ctl update kvd-1.so` (same version), "
             "stage outdated-leader checked before and the follower found still "
             "attached after each measurement (%s).\n\n" % (
                 machine["cores"], machine["cpu"], machine["kernel"], rb_version, clients,
                 keyspace, n_plain, n_pipe, pipeline, reps,
                 "all %d valid" % len(checks) if doc["all_valid"] else
                 "%d of %d valid: see kvd-throughput.json" % (len(valid_reps), len(checks))))
    md.write("| test | native | single leader | leader + follower | single leader vs native | leader + follower vs native | leader + follower vs single leader |\n")
    md.write("|---|---:|---:|---:|---:|---:|---:|\n")
    for e in out:
        md.write("| %s%s | %s | %s | %s | %s | %s | %s |\n" % (
            e["test"], " -P %d" % e["pipeline"] if e["pipeline"] > 1 else "",
            cell(e["native"]), cell(e["single_leader"]), cell(e["outdated_leader"]),
            pct(e["single_leader_vs_native"]), pct(e["outdated_leader_vs_native"]),
            pct(e["outdated_leader_vs_single_leader"])))
    md.write("| *MVEDSUa (paper)* | | | | *3-9% slower* | *42-52% slower* | |\n")
    md.write("| *issue's goal* | | | | *within 1%* | *within 20%* | |\n")
    md.write("\nCPU time the server used per request (every process of it: the program, "
             "the supervisor, the follower; medians):\n\n")
    md.write("| test | native | single leader | leader + follower | single leader / native | leader + follower / native |\n")
    md.write("|---|---:|---:|---:|---:|---:|\n")
    def us(e):
        return "invalid" if not e else "%.2f us" % e["cpu_us_per_request"]
    def x(r):
        return "n/a" if r is None else "x%.2f" % r
    for e in out:
        md.write("| %s%s | %s | %s | %s | %s | %s |\n" % (
            e["test"], " -P %d" % e["pipeline"] if e["pipeline"] > 1 else "",
            us(e["native"]), us(e["single_leader"]), us(e["outdated_leader"]),
            x(e["cpu_single_leader_vs_native"]), x(e["cpu_outdated_leader_vs_native"])))
EOF
cat "$results/kvd-throughput.md"
