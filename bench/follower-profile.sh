#!/usr/bin/env bash
# bench/follower-profile.sh [--build DIR] [--results DIR] [--seconds N]
#
# Where the leader's and the follower's CPU time goes (issue 5's pipelined
# throughput): kvd-1.so under `mvedsua-run`, a follower of the same version
# attached (`mvedsua-ctl update kvd-1.so`, stage outdated-leader), driven by
# redis-benchmark pipelined (-P 16, 20 connections, random keys among
# 100000), SET then GET. `perf record` samples each process while the load
# runs; the samples are split by object: the program's own code (kvd-1.so),
# libc, the runtime (libmvedsua.so) and the kernel. What the follower costs
# beyond the program's own work is the runtime's and the kernel's share.
# Writes RESULTS/follower-profile.json and follower-profile.md. Needs perf
# (Debian's linux-perf) with access to the processes (root, or
# kernel.perf_event_paranoid <= 1). Figures are reported, never checked.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(dirname "$here")/build
results=$here/results
seconds=8
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift ;;
    --results) results=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    *) echo "usage: $0 [--build DIR] [--results DIR] [--seconds N]" >&2; exit 2 ;;
  esac
  shift
done
for tool in perf redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "follower-profile: needs $tool" >&2; exit 1; }
done
build=$(cd "$build" && pwd)
kvd=$build/examples/kvd/kvd-1.so
[ -e "$kvd" ] || { echo "follower-profile: missing $kvd (build kvd-examples)" >&2; exit 1; }
mkdir -p "$results"
work=$(mktemp -d "${TMPDIR:-/tmp}/follower-profile.XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

sock=$work/ctl.sock
"$build/bin/mvedsua-run" --control "$sock" "$kvd" --port 0 --bind 127.0.0.1 2>"$work/server.log" &
server=$!
for _ in $(seq 400); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
  [ -n "$port" ] && [ -S "$sock" ] && break
  sleep 0.025
done
[ -n "$port" ] || { echo "follower-profile: kvd did not start" >&2; cat "$work/server.log" >&2; exit 1; }
"$build/bin/mvedsua-ctl" --control "$sock" update --timeout 1m "$kvd" >/dev/null
read -r stage leader follower < <("$build/bin/mvedsua-ctl" --control "$sock" status --json |
  python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["stage"], s["leader_pid"], s["follower_pid"])')
[ "$stage" = outdated-leader ] || { echo "follower-profile: stage $stage, not outdated-leader" >&2; exit 1; }

for test in set get; do
  # Load first; each process sampled for the same `seconds` of it.
  timeout $((seconds + 30)) redis-benchmark -h 127.0.0.1 -p "$port" -c 20 -n 100000000 -P 16 \
    -r 100000 -t "$test" -q >/dev/null 2>&1 &
  bench=$!
  sleep 1
  recorders=()
  for role in leader follower; do
    pid=$leader; [ $role = follower ] && pid=$follower
    perf record -q -F 1000 -o "$work/$test-$role.data" -p "$pid" -- sleep "$seconds" >/dev/null 2>&1 &
    recorders+=($!)
  done
  wait "${recorders[@]}" || true
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  for role in leader follower; do
    perf report -i "$work/$test-$role.data" -n --no-children --sort dso --stdio 2>/dev/null |
      awk -v t=$test -v r=$role '
        /%/ && $1 ~ /%$/ {sub(/%/, "", $1); n += $2; print t, r, $1, $3}
        END {print t, r, "samples", n}' >> "$work/split.txt"
  done
done
after=$("$build/bin/mvedsua-ctl" --control "$sock" status --json |
  python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["stage"], s["follower_pid"])')

python3 - "$work/split.txt" "$results" "$after $follower" <<'PY'
import collections, json, os, platform, sys
split, results, after = sys.argv[1], sys.argv[2], sys.argv[3].split()
share = collections.defaultdict(lambda: collections.Counter())
cpu = {}
for line in open(split):
    test, role, pct, dso = line.split(None, 3)
    dso = dso.strip()
    if pct == "samples":  # 1000 a second of CPU time (perf record -F 1000)
        cpu[(test, role)] = float(dso) / 1000
        continue
    group = ("the program (kvd-1.so)" if "kvd-1.so" in dso else
             "libc" if dso.startswith("libc") else
             "the runtime (libmvedsua.so)" if "libmvedsua" in dso else
             "the kernel" if "kernel" in dso else "other")
    share[(test, role)][group] += float(pct)
groups = ["the program (kvd-1.so)", "libc", "the runtime (libmvedsua.so)",
          "the kernel", "other"]
valid = after[0] == "outdated-leader" and after[1] == after[2]
rows = {"%s %s" % k: dict(v, cpu_seconds=cpu.get(k)) for k, v in share.items()}
json.dump({"machine": platform.node(), "cores": os.cpu_count(),
           "follower_still_attached": valid, "shares_percent": rows},
          open(os.path.join(results, "follower-profile.json"), "w"), indent=1)
with open(os.path.join(results, "follower-profile.md"), "w") as md:
    md.write("### Where the leader's and the follower's CPU time goes "
             "(kvd, redis-benchmark -P 16)\n\n")
    md.write("%d cores; kvd-1.so with a same-version follower (stage "
             "outdated-leader%s); perf samples (1000 a second of CPU "
             "time) of each process while the load ran, split by object, "
             "percent of its samples.\n\n" % (
                 os.cpu_count(), "" if valid else "; NOT VALID: the follower "
                 "was gone at the end"))
    md.write("| test | process | CPU s | " + " | ".join(groups) + " |\n")
    md.write("|---|---|---:|" + "---:|" * len(groups) + "\n")
    for (test, role), c in sorted(share.items(), key=lambda kv: (kv[0][0], kv[0][1] != "leader")):
        md.write("| %s -P 16 | %s | %.2f | %s |\n" % (
            test.upper(), role, cpu.get((test, role), 0),
            " | ".join("%.1f" % c[g] for g in groups)))
print(open(os.path.join(results, "follower-profile.md")).read())
PY
