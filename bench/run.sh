#!/usr/bin/env bash
# bench/run.sh [--quick] [--no-install] [--build DIR] [--results DIR]: runs
# every benchmark and writes JSON, CSV, Markdown and PNG plots under
# bench/results/, and bench/results/summary.md. Each figure is a comparison
# measured in this same run (with vs without the thing measured), never an
# absolute pass/fail threshold. --quick uses tiny sizes (the smoke test runs
# it). The plots need gnuplot: when it is missing, run.sh installs Debian's
# gnuplot-nox with apt-get (through sudo when not root), unless --no-install;
# without it the plots are skipped and the summary says so.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=$root/build
quick=0
install=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --build) build=$2; shift ;;
    --results) results=$2; shift ;;
    *) echo "usage: $0 [--quick] [--no-install] [--build DIR] [--results DIR]" >&2; exit 2 ;;
  esac
  shift
done
results=${results:-$here/results}
mkdir -p "$results"
clang=/usr/lib/llvm-19/bin/clang
cmake --build "$build" --target bench-programs mvedsua-run mvedsua-ctl kvd-examples >/dev/null

machine() {
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  printf '{"cores": %d, "kernel": "%s", "cpu": "%s"}' "$(nproc)" "$(uname -r)" "$cpu"
}

# gnuplot for the plots: Debian's gnuplot-nox, installed when missing (unless
# --no-install). Prints nothing; the plot step says when plots are skipped.
ensure_gnuplot() {
  command -v gnuplot >/dev/null && return 0
  [ $install -eq 1 ] || return 0
  command -v apt-get >/dev/null || return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || { echo "bench: gnuplot missing and no root or sudo to install gnuplot-nox" >&2; return 0; }
    sudo=(sudo -n)
  fi
  echo "bench: installing gnuplot-nox with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends gnuplot-nox >&2 ||
    { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends gnuplot-nox >&2; } ||
    echo "bench: could not install gnuplot-nox" >&2
}

# 1. The update point: cost of one check, overhead in a loop, code size, and
#    proof that loops without a point compile exactly as without the plugin.
bench_update_point() {
  local n=200000000 reps=7
  [ $quick -eq 1 ] && n=2000000 reps=3
  local timing sizes loops
  timing=$("$build/bin/mvedsua-run" "$build/bench/upbench.so" "$n" "$reps")
  sizes=$(nm -S --radix=d --defined-only "$build/bench/upbench.so" |
    awk '$4 == "call_with_point" { w = $2 + 0 }
         $4 == "call_without_point" { wo = $2 + 0 }
         END { printf "{\"call_with_point_bytes\": %d, \"call_without_point_bytes\": %d, \"check_bytes\": %d}", w, wo, w - wo }')
  loops=$("$here/update-point/compare-loops.sh" "$clang" "$build/lib/MvedsuaPass.so" \
    "$root/include" "$here/update-point/loops.c")
  printf '{"machine": %s,\n "timing": %s,\n "code_size": %s,\n "loops_without_points": %s}\n' \
    "$(machine)" "$timing" "$sizes" "$loops" > "$results/update-point.json"
  python3 - "$results/update-point.json" <<'PY' > "$results/update-point.md"
import json, sys
r = json.load(open(sys.argv[1]))
t, c, l, m = r["timing"], r["code_size"], r["loops_without_points"], r["machine"]
print("### Update point (bench/update-point)")
print()
print(f"Machine: {m['cores']} cores, {m['cpu']}, Linux {m['kernel']}.")
print()
print("| measure | with update point | without | difference |")
print("|---|---|---|---|")
print(f"| call of a function holding one point | {t['call_with_point_ns']:.2f} ns | {t['call_without_point_ns']:.2f} ns | {t['check_ns']:.2f} ns per check |")
print(f"| event-loop turn (hash 64 bytes) | {t['loop_turn_with_point_ns']:.2f} ns | {t['loop_turn_without_point_ns']:.2f} ns | x{t['loop_overhead_ratio']:.3f} |")
print(f"| code size of that function | {c['call_with_point_bytes']} B | {c['call_without_point_bytes']} B | {c['check_bytes']} B |")
print()
print(f"Loops without update points: {l['identical']} of {l['functions']} functions compile to identical machine code with and without the plugin.")
PY
  cat "$results/update-point.md"
}

# 2. The in-place update pause as clients see it (bench/inplace-pause.sh).
bench_inplace_pause() {
  local keys="10000 100000 1000000"
  [ $quick -eq 1 ] && keys="1000 5000"
  local window=3
  [ $quick -eq 1 ] && window=1
  "$here/inplace-pause.sh" --build "$build" --results "$results" --keys "$keys" --window "$window"
}

# 3. kvd's throughput under redis-benchmark: native, single leader, leader +
#    follower (bench/kvd-throughput.sh).
bench_kvd_throughput() {
  local q=()
  [ $quick -eq 1 ] && q=(--quick)
  "$here/kvd-throughput.sh" --build "$build" --results "$results" "${q[@]}"
}

# 4. The update pause under load, no update vs in place vs multi-version, with
#    the log's peak and the follower's memory (bench/update-pause.py).
bench_update_pause() {
  if [ $quick -eq 1 ]; then
    python3 "$here/update-pause.py" --build "$build" --results "$results" --quick --keys 2000
  else
    python3 "$here/update-pause.py" --build "$build" --results "$results" \
      --keys "10000 100000 1000000" --reps 5
  fi
}

# 5. The state transformation against a plain copy, and the shim's fast path
#    against a plain system call (bench/micro.sh).
bench_micro() {
  local q=()
  [ $quick -eq 1 ] && q=(--quick)
  "$here/micro.sh" --build "$build" --results "$results" "${q[@]}"
}

ensure_gnuplot
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$results"/*.png "$results"/update-pause-*.csv
bench_update_point
bench_inplace_pause
bench_kvd_throughput
bench_update_pause
bench_micro
plots=$(python3 "$here/plot.py" "$results")
{
  echo "# mvedsua benchmark results"
  echo
  echo "Produced by \`bench/run.sh$([ $quick -eq 1 ] && echo ' --quick')\` on $(date -u +%Y-%m-%d)" \
    "on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
    "Linux $(uname -r)). The machine is shared (other builds may run beside the benchmarks):" \
    "absolute figures are noisy; each comparison is measured in the same run, interleaved." \
    "Load average (1, 5, 15 min) $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo
  cat "$results/update-point.md"
  echo
  cat "$results/inplace-pause.md"
  echo
  cat "$results/kvd-throughput.md"
  echo
  [ -e "$results/kvd-throughput.png" ] && echo '![kvd throughput relative to native](kvd-throughput.png)' && echo
  cat "$results/update-pause.md"
  echo
  cat "$results/micro.md"
  echo
  if [ -n "$plots" ]; then
    for p in $plots; do
      case $p in
        update-pause.png) echo "![client latency around the update]($p)"; echo ;;
        update-pause-*.png) n=${p#update-pause-}; n=${n%.png}
          echo "![latency timeline through the update, $n keys]($p)"; echo ;;
      esac
    done
  else
    echo "Plots skipped: gnuplot is not installed."
  fi
} > "$results/summary.md"
[ -d "$build/examples/mcd" ] && "$here/mcd-throughput.sh" --build "$build" --results "$results" "$([ $quick -eq 1 ] && echo --quick || echo --full)" && { echo; cat "$results/mcd-throughput.md"; } >> "$results/summary.md"
# The redis port's update pause with 1M keys (10 000 with --quick), when the
# port is built (ports/redis/build.sh); a failed run fails run.sh.
if [ -f "$build/ports/redis/versions.list" ]; then
  if [ $quick -eq 1 ]; then
    python3 "$here/update-pause.py" --server redis --build "$build" --results "$results" \
      --quick --keys 10000 >/dev/null
  else
    python3 "$here/update-pause.py" --server redis --build "$build" --results "$results" \
      --keys 1000000 --reps 5 >/dev/null
  fi
  { echo; cat "$results/redis-update-pause.md"; } >> "$results/summary.md"
fi
"$here/threads-mve.sh" --build "$build" --results "$results" $([ $quick -eq 1 ] && echo --quick) && { echo; echo "Threaded server (pool.c), requests per second: native, no follower, same-version follower"; echo; cat "$results/threads-mve.md"; } >> "$results/summary.md"
echo "results in $results"
