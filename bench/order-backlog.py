#!/usr/bin/env python3
"""bench/order-backlog.py [--build DIR] [--results DIR] [--workers "1 2 4"]
                         [--seconds S] [--reps N] [--quick]

Whether a follower that replays every thread's calls in the leader's order
keeps up with a threaded server under continuous load (issue 8). mcd-1
(examples/mcd) with W worker threads under mvedsua-run is updated to a copy
of itself (a same-version follower, stage outdated-leader); memcslap then
loads it without a break for S seconds (8 client threads, `set` and `get`
runs in turn) while `mvedsua-ctl status --json` is read every 100 ms. Two
configurations, measured side by side in the same run, each on a fresh
server, interleaved and rotated from one repetition to the next:

  unordered  MVEDSUA_MVE_ORDER_LANES=0: each follower thread replays its own
             lane at its own pace (only descriptor creation and closing are
             ordered across threads)
  ordered    MVEDSUA_MVE_ORDER_LANES=1: every call in the leader's order

Reported per configuration and worker count (medians over the repetitions):
the log's backlog (all lanes) at its peak and at the end of the load, the
time the follower took to drain it after the load stopped, memcslap's
operations per second, and the ratio ordered / unordered of each. A run in
which the follower was gone after the load (rolled back: a divergence, the
log's bound) is marked as such, with the reason, and left out of the medians.

Writes RESULTS/order-backlog.json and order-backlog.md. Timing is reported,
never checked.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIGS = {"unordered": "0", "ordered": "1"}


def status(ctl, sock):
    out = subprocess.run([ctl, "--control", sock, "status", "--json"],
                         capture_output=True, text=True, timeout=20)
    return json.loads(out.stdout)


def backlog(st):
    log = st.get("log") or {}
    return int(log.get("backlog_bytes", 0)), int(log.get("peak_backlog_bytes", 0))


def start(args, work, cfg, workers, rep):
    sock = os.path.join(work, f"{cfg}-{workers}-{rep}.sock")
    errlog = open(os.path.join(work, f"{cfg}-{workers}-{rep}.log"), "w+")
    env = dict(os.environ, MVEDSUA_MVE_ORDER_LANES=CONFIGS[cfg])
    p = subprocess.Popen([args.run, "--control", sock, args.mcd + "/mcd-1.so",
                          "-p", "0", "-t", str(workers), "-m", "4096"],
                         stderr=errlog, stdout=subprocess.DEVNULL, env=env)
    for _ in range(400):
        errlog.seek(0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", errlog.read())
        if m:
            return p, sock, int(m.group(1)), errlog
        if p.poll() is not None:
            break
        time.sleep(0.025)
    errlog.seek(0)
    sys.exit(f"order-backlog: mcd did not start:\n{errlog.read()}")


def load(port, seconds, ctl, sock):
    """memcslap without a break for `seconds`, sampling the backlog."""
    end = time.monotonic() + seconds
    ops = secs = 0.0
    peak = 0
    errors = []
    test = "set"
    while time.monotonic() < end:
        p = subprocess.Popen(["memcslap", f"--servers=127.0.0.1:{port}",
                              "--concurrency=8", "--execute-number=2000",
                              f"--test={test}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        while p.poll() is None:
            try:
                peak = max(peak, backlog(status(ctl, sock))[0])
            except (ValueError, subprocess.SubprocessError):
                pass
            time.sleep(0.1)
        out = p.stdout.read()
        bad = [l for l in out.splitlines() if re.search("fail|error", l, re.I)]
        if p.returncode or bad:
            errors.append(f"memcslap {test}: exit {p.returncode}: {bad[:2]}")
        m = re.search(rf"Time to {test}\s+(\d+) keys by\s+\d+ threads:\s+([\d.]+) seconds", out)
        if m and float(m.group(2)) > 0:
            ops += int(m.group(1))
            secs += float(m.group(2))
        test = "get" if test == "set" else "set"
    return (ops / secs if secs else 0.0), peak, errors


def run_one(args, work, cfg, workers, rep):
    p, sock, port, errlog = start(args, work, cfg, workers, rep)
    row = {"config": cfg, "workers": workers, "rep": rep}
    try:
        up = subprocess.run([args.ctl, "--control", sock, "update", args.same],
                            capture_output=True, text=True, timeout=120)
        if up.returncode:
            row["failed"] = "update: " + (up.stdout + up.stderr).strip()[-300:]
            return row
        rate, peak, errors = load(port, args.seconds, args.ctl, sock)
        st = status(args.ctl, sock)
        end_backlog, log_peak = backlog(st)
        row.update(ops=rate, peak_backlog=max(peak, end_backlog),
                   log_peak=log_peak, end_backlog=end_backlog, errors=errors)
        t0 = time.monotonic()
        while st.get("stage") == "outdated-leader" and backlog(st)[0] > (1 << 16) \
                and time.monotonic() - t0 < 120:
            time.sleep(0.05)
            st = status(args.ctl, sock)
        row["drain_s"] = time.monotonic() - t0
        if st.get("stage") != "outdated-leader":
            reason = (st.get("last_update") or {}).get("reason", "")
            row["failed"] = f"stage {st.get('stage')}: {reason[:300]}"
        return row
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        errlog.close()


def mb(x):
    return f"{x / 1e6:.1f}"


def report(rows, args, load_before, load_after):
    out = ["### Ordered vs unordered follower under continuous load (mcd, memcslap)", "",
           f"{os.cpu_count()} cores, {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}, "
           f"Linux {os.uname().release}. Load average {load_before} at the start, {load_after} at the end. "
           f"mcd-1 -> mcd-1 (same-version follower), memcslap --concurrency=8 for {args.seconds} s "
           f"without a break, medians of {args.reps} repetition(s).", "",
           "| workers | follower | peak backlog (MB) | backlog at the end (MB) | drained after (s) | memcslap ops/s | ops/s ordered / unordered | runs kept |",
           "|---:|---|---:|---:|---:|---:|---:|---:|"]
    summary = {}
    for w in args.workers:
        med = {}
        for cfg in CONFIGS:
            ok = [r for r in rows if r["workers"] == w and r["config"] == cfg and "failed" not in r]
            n_all = sum(1 for r in rows if r["workers"] == w and r["config"] == cfg)
            if not ok:
                out.append(f"| {w} | {cfg} | | | | | | 0 of {n_all} |")
                continue
            m = {k: statistics.median(r[k] for r in ok)
                 for k in ("peak_backlog", "end_backlog", "drain_s", "ops")}
            med[cfg] = m
            ratio = ""
            if cfg == "ordered" and "unordered" in med:
                ratio = f"{m['ops'] / med['unordered']['ops']:.2f}"
            spread = "-".join(mb(x) for x in (min(r["peak_backlog"] for r in ok),
                                              max(r["peak_backlog"] for r in ok)))
            out.append(f"| {w} | {cfg} | {mb(m['peak_backlog'])} ({spread}) | "
                       f"{mb(m['end_backlog'])} | {m['drain_s']:.2f} | {m['ops']:.0f} | {ratio} | "
                       f"{len(ok)} of {n_all} |")
        summary[w] = med
    failed = [r for r in rows if "failed" in r]
    if failed:
        out += ["", "Runs left out:", ""]
        out += [f"- {r['config']}, {r['workers']} workers, repetition {r['rep']}: {r['failed']}"
                for r in failed]
    errs = [(r, e) for r in rows for e in r.get("errors", [])]
    if errs:
        out += ["", "memcslap errors:", ""]
        out += [f"- {r['config']}, {r['workers']} workers: {e}" for r, e in errs[:10]]
    return "\n".join(out) + "\n", summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--workers", default="1 2 4")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.reps = 3, 1
    args.workers = [int(w) for w in args.workers.split()]
    build = os.path.abspath(args.build)
    args.run = os.path.join(build, "bin", "mvedsua-run")
    args.ctl = os.path.join(build, "bin", "mvedsua-ctl")
    args.mcd = os.path.join(build, "examples", "mcd")
    for f in (args.run, args.ctl, args.mcd + "/mcd-1.so"):
        if not os.path.exists(f):
            sys.exit(f"order-backlog: missing {f} (build the project; mcd needs libevent-dev)")
    if not shutil.which("memcslap"):
        sys.exit("order-backlog: needs memcslap (Debian: libmemcached-tools)")
    os.makedirs(args.results, exist_ok=True)
    work = tempfile.mkdtemp(prefix="order-backlog.")
    args.same = os.path.join(work, "mcd-same.so")
    shutil.copy(args.mcd + "/mcd-1.so", args.same)
    load_before = open("/proc/loadavg").read().split()[:3]
    rows = []
    try:
        for rep in range(1, args.reps + 1):
            cfgs = list(CONFIGS) if rep % 2 else list(reversed(CONFIGS))
            for w in args.workers:
                for cfg in cfgs:
                    print(f"order-backlog: repetition {rep}, {w} workers, {cfg}",
                          file=sys.stderr, flush=True)
                    rows.append(run_one(args, work, cfg, w, rep))
                    r = rows[-1]
                    print("  " + (r.get("failed") or
                                  f"peak {mb(r['peak_backlog'])} MB, end {mb(r['end_backlog'])} MB, "
                                  f"drained in {r['drain_s']:.2f} s, {r['ops']:.0f} ops/s"),
                          file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = open("/proc/loadavg").read().split()[:3]
    md, summary = report(rows, args, " ".join(load_before), " ".join(load_after))
    with open(os.path.join(args.results, "order-backlog.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.results, "order-backlog.json"), "w") as f:
        json.dump({"rows": rows, "medians": summary, "seconds": args.seconds,
                   "reps": args.reps, "load_before": load_before,
                   "load_after": load_after}, f, indent=1)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
