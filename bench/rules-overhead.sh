#!/usr/bin/env bash
# bench/rules-overhead.sh [--build DIR] [--results DIR] [--quick]
#
# What expected-difference rules that never match cost (issue 6,
# docs/rules.md): kvd-1 under mvedsua-run and redis-benchmark (GET and SET,
# 20 loopback connections, not pipelined), with a follower of kvd-1.1 (same
# replies) attached in four configurations, measured in this same run:
#   no_rules   `mvedsua-ctl update kvd-1.1.so`: no matcher at all
#   rules_0    `--rules` with an empty rules file: the matcher on, no rule
#   rules_5    5 rules, rules_50  50 rules, none of which ever matches, all
#              starting with calls kvd makes on every request (read, sendto,
#              epoll_wait), a third each: the epoll_wait ones with a number
#              that rules them out from the record's head; the read and
#              sendto ones need the record copied out of the log and tried
#              against each rule that starts with its call
# For each configuration: the leader's throughput (requests/s) and the
# follower's CPU time per request (user + system, from /proc), as ratios to
# no_rules.
#
# Then the matching cost per call, without the clients' noise: rules-replay.c
# (built here with the plugin) updates itself to itself and makes N writes
# to /dev/null, which the follower replays once they are all in the log (it
# sleeps before its update point), with 0, 5 and 50 rules starting with write
# that never match (each write is tried against every one) or none: the
# replay's time per write, and its difference to the run without rules. The configurations are rotated in each repetition (3, or 1 with
# --quick; RULES_BENCH_REPS and RULES_BENCH_N set the repetitions and the
# requests per test); the report is the median. Before each measurement the
# follower must be in the outdated-leader stage and still there afterwards
# (same pid), else it is tried once more, then left out. Writes RESULTS/rules-overhead.json
# and rules-overhead.md. Timing is reported, never checked.
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
for f in "$build/bin/mvedsua-run" "$build/bin/mvedsua-ctl" "$build/lib/MvedsuaPass.so" \
         "$build/examples/kvd/kvd-1.so" "$build/examples/kvd/kvd-1.1.so"; do
  [ -e "$f" ] || { echo "rules-overhead: missing $f (build the kvd-examples target)" >&2; exit 1; }
done
command -v redis-benchmark >/dev/null || { echo "rules-overhead: needs redis-benchmark" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rules-overhead.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/lib/llvm-19/bin/clang -g -O2 -fPIC -shared -fpass-plugin="$build/lib/MvedsuaPass.so" \
  -I"$root/include" -I"$root/runtime" -L"$build/lib" -lmvedsua \
  "$here/rules-replay.c" -o "$work/rules-replay.so"
exec /usr/bin/python3 - "$build" "$results" "$quick" "$work" "$root" <<'PY'
import json, os, platform, re, socket, statistics, subprocess, sys, time

build, results, quick, work, root = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5]
run, ctl = build + "/bin/mvedsua-run", build + "/bin/mvedsua-ctl"
kvd = build + "/examples/kvd"
sock = work + "/kvd.sock"
reps, n = (1, 20000) if quick else (int(os.environ.get("RULES_BENCH_REPS", "3")),
                                    int(os.environ.get("RULES_BENCH_N", "200000")))
clients = 20
os.environ["MVEDSUA_RULES_CACHE"] = work + "/cache"


def rules_file(count):
    """`count` rules that start with read, sendto or epoll_wait and never
    match: a byte pattern kvd never receives or sends, an impossible
    length, a descriptor kvd never has."""
    lines = ["// %d rules that never match (bench/rules-overhead.sh)" % count]
    for i in range(count):
        k = i % 3
        if k == 0:
            lines.append('read(_, "NEVER-%d", _) => nothing' % i)
        elif k == 1:
            lines.append('send(_, buf, n, _) { $(n) == -%d && $(buf) != 0 } => nothing' % (i + 1))
        else:
            lines.append("epoll_wait(%d, _, _, _) => nothing" % (100000 + i))
    path = "%s/rules-%d.rules" % (work, count)
    open(path, "w").write("\n".join(lines) + "\n")
    return path


configs = [("no_rules", None)] + [("rules_%d" % c, rules_file(c)) for c in (0, 5, 50)]


def ctl_json():
    r = subprocess.run([ctl, "--control", sock, "status", "--json"], capture_output=True, text=True)
    return json.loads(r.stdout)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def bench(port):
    r = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n),
                        "-r", "100000", "-t", "get,set", "--csv"],
                       capture_output=True, text=True, timeout=600)
    out = {}
    for line in r.stdout.splitlines():
        parts = [p.strip('"') for p in line.split(",")]
        if parts and parts[0] in ("GET", "SET"):
            out[parts[0]] = float(parts[1])
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def measure(port, rules):
    args = [ctl, "--control", sock, "update"] + (["--rules", rules] if rules else []) + [kvd + "/kvd-1.1.so"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    st = ctl_json()
    if r.returncode != 0 or st["stage"] != "outdated-leader":
        return None, "update: " + (r.stdout + r.stderr).strip()
    follower = st["follower_pid"]
    t0 = cpu_ticks(follower)
    rps = bench(port)
    t1 = cpu_ticks(follower)
    st = ctl_json()
    ok = st["stage"] == "outdated-leader" and st["follower_pid"] == follower
    subprocess.run([ctl, "--control", sock, "rollback"], capture_output=True, text=True)
    if not ok:
        return None, "the follower did not stay: " + st["last_update"]["reason"]
    hz = os.sysconf("SC_CLK_TCK")
    rps["follower_cpu_us_per_request"] = (t1 - t0) / hz * 1e6 / (2 * n)
    return rps, ""


def write_rules(count):
    lines = ['write(_, "NEVER-%d", _) => nothing' % i for i in range(count)]
    path = "%s/write-%d.rules" % (work, count)
    open(path, "w").write("\n".join(lines) + "\n")
    r = subprocess.run([build + "/bin/mvedsua-rules", "compile", path],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


DELAY_MS = 3000


def run_ns(rules_so, writes):
    """The wall time (ns) of one rules-replay run, which ends when the
    follower has replayed every write (the leader waits for it), or None when
    the leader's loop did not end before the replay started or the follower
    did not replay everything."""
    prog = work + "/rules-replay.so"
    start = time.monotonic()
    r = subprocess.run([run, prog, prog, rules_so or "-", str(writes), str(DELAY_MS)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    took = (time.monotonic() - start) * 1e9
    loop = re.search(r"loop_ns (\d+)", r.stderr)
    done = re.search(r"(\d+) of \1 records replayed", r.stderr)
    if r.returncode != 0 or not loop or not done or int(loop.group(1)) > DELAY_MS * 1e6 * 0.8:
        return None
    return took


replay_configs = [("no_rules", None)] + [("rules_%d" % c, write_rules(c)) for c in (0, 5, 50)]
writes = 50000 if quick else int(os.environ.get("RULES_BENCH_WRITES", "500000"))
replay_raw = {name: [] for name, _ in replay_configs}
for rep in range(reps):
    order = replay_configs[rep % 4:] + replay_configs[:rep % 4]
    for name, so in order:
        t = run_ns(so, writes)
        if t is None:  # one more try: the machine is shared
            t = run_ns(so, writes)
        if t is not None:
            replay_raw[name].append(t)
replay_median = {name: statistics.median(v) if v else None for name, v in replay_raw.items()}

port = free_port()
log = open(work + "/kvd.log", "w")
server = subprocess.Popen([run, "--control", sock, kvd + "/kvd-1.so", "--port", str(port)], stderr=log)
try:
    for _ in range(1000):
        if os.path.exists(sock) and "listening" in open(work + "/kvd.log").read():
            break
        time.sleep(0.01)
    raw = {name: [] for name, _ in configs}
    notes = []
    for rep in range(reps):
        order = configs[rep % len(configs):] + configs[:rep % len(configs)]
        for name, rules in order:
            m, why = measure(port, rules)
            if m is None:  # one more try: the machine is shared
                notes.append("repetition %d, %s tried again: %s" % (rep + 1, name, why))
                m, why = measure(port, rules)
            if m is None:
                notes.append("repetition %d, %s left out: %s" % (rep + 1, name, why))
            else:
                raw[name].append(m)
finally:
    server.terminate()
    server.wait()

keys = ["GET", "SET", "follower_cpu_us_per_request"]
median = {name: {k: statistics.median([m[k] for m in ms]) for k in keys} if ms else None
          for name, ms in raw.items()}
base = median["no_rules"]
ratios = {}
for name, m in median.items():
    if m and base:
        ratios[name] = {k: round(m[k] / base[k], 3) for k in keys}
out = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                   "load_average": os.getloadavg()},
       "requests_per_test": n, "clients": clients, "repetitions": reps,
       "median": median, "ratio_to_no_rules": ratios, "raw": raw, "notes": notes,
       "replay": {"writes": writes, "run_ns_median": replay_median,
                  "raw": replay_raw}}
json.dump(out, open(results + "/rules-overhead.json", "w"), indent=1)
md = ["# Rules that never match: kvd under redis-benchmark (bench/rules-overhead.sh)", "",
      "%d GET + %d SET per configuration, %d connections, median of %d rotated repetitions; "
      "a follower of kvd-1.1 attached in every configuration. Ratios to `no_rules` "
      "(no matcher) in the same run; the follower's CPU per request is user + system "
      "time over both tests." % (n, n, clients, reps), "",
      "| configuration | GET req/s | SET req/s | follower CPU us/request | GET ratio | SET ratio | follower CPU ratio |",
      "|---|---|---|---|---|---|---|"]
for name, _ in configs:
    m, r = median[name], ratios.get(name)
    if not m:
        md.append("| %s | - | - | - | - | - | - |" % name)
        continue
    md.append("| %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.3f |" % (
        name, m["GET"], m["SET"], m["follower_cpu_us_per_request"],
        r["GET"], r["SET"], r["follower_cpu_us_per_request"]))
if base:
    md += ["", "Without pipelining a request makes at most 3 recorded calls (epoll_wait, "
           "read, sendto), fewer when one epoll_wait reports several connections; the "
           "follower's extra CPU per request over `no_rules`, divided by 3, is a lower "
           "bound of the matching cost per call: " + ", ".join(
               "%s %+.0f ns" % (name, (median[name]["follower_cpu_us_per_request"] -
                                      base["follower_cpu_us_per_request"]) * 1000 / 3)
               for name, _ in configs[1:] if median[name]) + "."]
rb = replay_median["no_rules"]
md += ["", "## Matching cost per call (rules-replay.c)", "",
       "%d writes to /dev/null replayed by a follower of the same program once all "
       "are in the log (it sleeps %d ms before its update point); rules starting with "
       "write that never match (every write is tried against each). The run ends when "
       "the follower has replayed everything; its wall time over the run without rules, "
       "per write, is what matching costs per call. Medians of %d rotated runs." % (
           writes, DELAY_MS, reps), "",
       "| configuration | run (ms) | over no_rules, per write (ns) | per rule tried (ns) |",
       "|---|---|---|---|"]
for name, _ in replay_configs:
    v = replay_median[name]
    count = int(name.split("_")[1]) if name != "no_rules" else 0
    if v is None or rb is None:
        md.append("| %s | - | - | - |" % name)
        continue
    per = (v - rb) / writes
    md.append("| %s | %.0f | %+.1f | %s |" % (name, v / 1e6, per,
              "%.2f" % (per / count) if count else "-"))
md += ["", "Machine: %d CPUs, Linux %s, load average at the end %.1f %.1f %.1f." % (
    os.cpu_count(), platform.release(), *os.getloadavg())]
md += ["", "Notes: " + "; ".join(notes)] if notes else []
open(results + "/rules-overhead.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
