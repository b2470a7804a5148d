#!/usr/bin/env python3
"""bench/update-pause.py [--build DIR] [--results DIR] [--keys "10000 100000 1000000"]
                        [--reps N] [--window S] [--quick] [--server kvd|redis]
                        [--redis-step FROM TO] [--modes "none mve ..."]

The update pause as clients see it (issue 7, item 2; issue 5, measurement 2).
kvd-1 under mvedsua-run, holding N keys, serves a real client load (two
redis-benchmark processes, one sending GETs and one SETs over random keys
among the N, 5 connections each) while a latency probe sends a GET every
4 ms on its own connection and records when each request was due and
how long it took from then (an open-loop schedule: a request that could not be
sent on time because the server was stalled counts the wait, so a pause of
300 ms shows as 75 slow requests, not one). One second into the probe, one of
three things happens:

  none       nothing (the baseline, measured in the same run)
  inplace    mvedsua-ctl update --inplace kvd-2.so
  mve        mvedsua-ctl update kvd-2.so (multi-version: the follower forked
             at an update point applies the update and catches up while the
             leader serves; the command returns once it caught up). Once the
             window is over: mvedsua-ctl rollback.
  promote    the whole multi-version update: mvedsua-ctl update kvd-2.so,
             promote as soon as it returned, then finish (kvd-2 alone).

kvd-1 -> kvd-2 transforms every entry (examples/kvd/kvd-1-2.xf).

--server redis measures the same on the redis port instead (ports/redis,
built by ports/redis/build.sh): its first version (redis-7.0.15-deb12u1,
persistence off) updated to the second (deb12u2), or the step --redis-step
names (two versions of build/ports/redis/versions.list). Results go
to redis-update-pause.{json,md} and redis-update-pause-N.csv.

Every reply is checked: the probe's GETs must return the key's value (the
fill's, or the load's SET payload); redis-benchmark 7 exits on an error reply
or a lost connection (printing it), which makes the run invalid. Reported per
mode and size, from the window [request, request + WINDOW]: the probe's max,
p99 and p50 latency and requests, the ratios against the no-update run, the
time the update command took; the load's throughput in the window (the two
redis-benchmark processes' rates over their 250 ms progress intervals,
summed) and its ratio to the no-update run; for the multi-version mode the log's peak
(status --json: log.peak_backlog_bytes) and the follower's resident memory
(sampled every 50 ms from /proc/PID/smaps_rollup while it exists: its Private
pages, i.e. what it holds beyond what it shares with the leader, and its Pss),
beside the leader's. Each repetition runs every size and mode on a fresh
server, interleaved; the figures are medians over the repetitions.

Writes RESULTS/update-pause.json, update-pause.md and update-pause-N.csv (the
timeline of the median repetition: per 10 ms bucket, the max latency of each
mode). Timing is reported, never checked: a run is marked invalid (and left
out of the medians) only when something other than timing went wrong (the
update failed, the follower was rolled back by itself, the probe saw an error
or a wrong value, the load died or printed an error); any invalid run makes the
script exit with status 1 once the results are written, naming what went wrong.
"""
import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
from resp import Conn  # noqa: E402

BUCKET = 0.010   # timeline bucket, seconds
RATE = 250       # probe requests per second
PRE = 1.0        # probe seconds before the update request (0.5 with --quick)
POST = 0.3       # probe seconds after the window
# What redis-benchmark 7 -t set stores: its default 3-byte payload, made by
# its generator from a fixed seed; the only value besides the fill's a
# probe's GET may return.
LOAD_VALUE = b"VXK"


def fill_value(i):
    return b"value-%010d" % i


class Target:
    """The server measured: its two versions, its arguments, the log line
    that says it serves, and where its results go."""

    def __init__(self, name, old, new, args, ready, label, prefix):
        self.name, self.old, self.new, self.args = name, old, new, args
        self.ready, self.label, self.prefix = ready, label, prefix

    @staticmethod
    def kvd(build):
        d = build + "/examples/kvd"
        return Target("kvd", d + "/kvd-1.so", d + "/kvd-2.so", [], "listening",
                      "kvd-1 -> kvd-2", "update-pause")

    @staticmethod
    def redis(build, step):
        d = build + "/ports/redis"
        try:
            versions = open(d + "/versions.list").read().split()
        except OSError:
            sys.exit("update-pause: missing %s/versions.list (run ports/redis/build.sh -B %s)"
                     % (d, build))
        old, new = step or versions[:2]
        for v in (old, new):
            if v not in versions:
                sys.exit("update-pause: %s is not a version of %s/versions.list (%s)"
                         % (v, d, " ".join(versions)))
        # persistence off (docs/ports/redis.md); its log on stdout
        args = ["--save", "", "--appendonly", "no", "--logfile", ""]
        return Target("redis", "%s/%s.so" % (d, old), "%s/%s.so" % (d, new), args,
                      "Ready to accept connections", "%s -> %s" % (old, new),
                      "redis-update-pause")

    def so(self, which):
        return os.path.basename(getattr(self, which))[:-3]


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "kernel": os.uname().release, "cpu": cpu}


# ---------------------------------------------------------------- the probe
def probe_main(port, keys, seconds, out):
    """One connection, a GET of a random key due every 1/RATE s; prints
    'ready' once connected, then writes JSON to OUT."""
    c = Conn(port)
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rnd = random.Random(7)
    interval = 1.0 / RATE
    print("ready", flush=True)
    wall0, pc0 = time.time(), time.perf_counter()
    due, end = pc0, pc0 + seconds
    t, lat, errors, first_error = [], [], 0, None
    while due < end:
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        i = rnd.randrange(keys)
        try:
            r = c.ask("GET", "key:%012d" % i)
        except (OSError, EOFError) as e:
            errors += 1
            first_error = first_error or "GET key:%012d: %r" % (i, e)
            break
        if r != fill_value(i) and r != LOAD_VALUE:
            errors += 1
            first_error = first_error or "GET key:%012d answered %r" % (i, r)
        t.append(round(due - pc0, 6))
        lat.append(round(time.perf_counter() - due, 6))
        due += interval
    json.dump({"wall0": wall0, "t": t, "lat": lat, "errors": errors,
               "first_error": first_error}, open(out, "w"))


# ------------------------------------------------------------ measurements
def loadavg():
    """The 1-minute load average."""
    return float(open("/proc/loadavg").read().split()[0])


def pctl(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def smaps(pid):
    """Rss, Pss, Private (clean + dirty) of PID in kB, or None."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            v = {}
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":"):
                    v[parts[0][:-1]] = int(parts[1]) if parts[1].isdigit() else 0
        return {"rss_kb": v.get("Rss", 0), "pss_kb": v.get("Pss", 0),
                "private_kb": v.get("Private_Clean", 0) + v.get("Private_Dirty", 0)}
    except (OSError, ValueError):
        return None


def read_rates(pipe, out, errors):
    """redis-benchmark -q prints 'GET: rps=N (overall: ...) ...\\r' every
    250 ms (flushed): appends (time, N) to OUT. It exits on an error reply
    ('Error from server: ...') or a lost connection ('Error: ...'): those
    lines go to ERRORS."""
    buf = b""
    while True:
        data = pipe.read1(4096)
        if not data:
            return
        now = time.time()
        buf += data
        *lines, buf = re.split(rb"[\r\n]", buf)
        for line in lines:
            m = re.search(rb"rps=([0-9.]+)", line)
            if m:
                out.append((now, float(m.group(1))))
            elif b"rror" in line:
                errors.append(line.decode(errors="replace").strip())


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# Variants of a mode: the same run with something turned off in the server's
# environment, to measure what it does.
VARIANTS = {"mve-nobatch": ("mve", {"MVEDSUA_MVE_FOLLOWER_BATCH": "0"})}


class Run:
    def __init__(self, args, n, mode, rep, window):
        self.a, self.n, self.name, self.rep, self.window = args, n, mode, rep, window
        self.mode, self.env = VARIANTS.get(mode, (mode, {}))
        self.work = tempfile.mkdtemp(prefix="update-pause.")
        self.sock = os.path.join(self.work, "ctl.sock")
        self.procs = []

    def ctl(self, *argv, timeout=600):
        p = subprocess.run([self.a.ctl, "--control", self.sock] + list(argv),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout.strip()

    def status(self):
        rc, out = self.ctl("status", "--json")
        return json.loads(out) if rc == 0 else {}

    def start_server(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = os.path.join(self.work, "server.log")
        tg = self.a.target
        log = open(self.log, "w")
        self.server = subprocess.Popen(
            [self.a.run, "--control", self.sock, tg.old,
             "--port", str(self.port), "--bind", "127.0.0.1"] + tg.args,
            stdout=log if tg.name == "redis" else subprocess.DEVNULL, stderr=log,
            env=dict(os.environ, **self.env))
        self.procs.append(self.server)
        for _ in range(400):
            if os.path.exists(self.sock) and tg.ready in open(self.log).read():
                return
            if self.server.poll() is not None:
                break
            time.sleep(0.025)
        raise RuntimeError("%s did not start: %s" % (tg.name, open(self.log).read()))

    def fill(self):
        out = open(os.path.join(self.work, "fill.out"), "w+")
        p = subprocess.Popen(["redis-cli", "-p", str(self.port), "--pipe"],
                             stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        step = 50000
        for lo in range(0, self.n, step):
            p.stdin.write(b"".join(b"SET key:%012d %s\r\n" % (i, fill_value(i))
                                   for i in range(lo, min(self.n, lo + step))))
        p.stdin.close()
        p.wait()
        out.seek(0)
        said = out.read()
        if p.returncode or "errors: 0," not in said:
            raise RuntimeError("filling with redis-cli --pipe failed: " + said.strip())
        size = int(Conn(self.port).ask("DBSIZE")[1:])
        if size != self.n:
            raise RuntimeError("%s holds %d keys, not %d" % (self.a.target.name, size, self.n))

    def start_load(self):
        self.load, self.load_rates, self.load_errors = [], [], []
        for test in ("get", "set"):
            p = subprocess.Popen(
                ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-c", "5",
                 "-n", "2000000000", "-r", str(self.n), "-t", test, "-q"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            rates = []
            threading.Thread(target=read_rates, args=(p.stdout, rates, self.load_errors),
                             daemon=True).start()
            self.load.append(p)
            self.load_rates.append(rates)
            self.procs.append(p)

    def sample_memory(self, stop, out):
        """While the run lasts: the largest follower's figures seen."""
        while not stop.is_set():
            for pid in children(self.sup_pid):
                if pid == self.leader_pid:
                    continue
                m = smaps(pid)
                if m and m["rss_kb"]:
                    out["follower_pid"] = pid
                    for k, v in m.items():
                        out[k] = max(out.get(k, 0), v)
            stop.wait(0.05)

    def execute(self):
        a, r = self.a, {"keys": self.n, "mode": self.name, "rep": self.rep,
                        "window_s": self.window, "loadavg": loadavg()}
        try:
            self.start_server()
            self.fill()
            st = self.status()
            self.leader_pid, self.sup_pid = st["leader_pid"], st["supervisor_pid"]
            r["leader_before"] = smaps(self.leader_pid)
            self.start_load()
            time.sleep(0.5)
            out = os.path.join(self.work, "probe.json")
            probe = subprocess.Popen(
                [sys.executable, __file__, "--probe", str(self.port), str(self.n),
                 str(PRE + self.window + POST), out], stdout=subprocess.PIPE, text=True)
            self.procs.append(probe)
            probe.stdout.readline()
            stop, mem = threading.Event(), {}
            sampler = None
            if self.mode == "mve":
                sampler = threading.Thread(target=self.sample_memory, args=(stop, mem))
                sampler.start()
            time.sleep(PRE)
            t_req = time.time()
            new = a.target.new
            if self.mode == "inplace":
                rc, reply = self.ctl("update", "--inplace", "--timeout", "2m", new)
            elif self.mode == "mve":
                rc, reply = self.ctl("update", "--timeout", "2m", new)
            elif self.mode == "promote":
                # the whole update: caught up, promoted at once, finished
                rc, reply = self.ctl("update", "--timeout", "2m", new)
                st1 = self.status()
                r["t_caught_up_s"] = round(time.time() - t_req, 3)
                r["peak_backlog_bytes"] = (st1.get("log") or {}).get("peak_backlog_bytes")
                prc, preply = self.ctl("promote")
                r["t_promoted_s"] = round(time.time() - t_req, 3)
                frc, freply = self.ctl("finish")
                r["promote_reply"], r["finish_reply"] = preply, freply
                rc = rc or prc or frc
            else:
                rc, reply = 0, ""
            t_ret = time.time()
            probe.wait()
            # the load's throughput in the window: each redis-benchmark's
            # rate over its 250 ms progress intervals, summed
            rates = []
            for samples in self.load_rates:
                xs = [v for t, v in list(samples) if t_req < t <= t_req + self.window]
                rates.append(statistics.mean(xs) if xs else None)
            r["window_rps"] = round(sum(rates)) if all(x is not None for x in rates) else None
            st = self.status()
            r["load_alive"] = all(p.poll() is None for p in self.load)
            if self.mode == "mve":
                r["stage_after_window"] = st.get("stage")
                r["peak_backlog_bytes"] = (st.get("log") or {}).get("peak_backlog_bytes")
                rb_rc, rb_reply = self.ctl("rollback")
                stop.set()
                sampler.join()
                st2 = self.status()
                r["rollback_reply"] = rb_reply
                peak2 = (st2.get("log") or {}).get("peak_backlog_bytes") or 0
                r["peak_backlog_bytes"] = max(r["peak_backlog_bytes"] or 0, peak2)
                r["follower_peak"] = mem
                r["leader_during"] = smaps(self.leader_pid)
                r["outcome_after_rollback"] = (st2.get("last_update") or {}).get("outcome")
            r["update_rc"], r["update_reply"] = rc, reply
            r["update_s"] = round(t_ret - t_req, 3) if self.mode != "none" else None
            logtext = open(self.log).read()
            m = re.search(r"the state transfer (\d+) us", logtext)
            r["state_transfer_ms"] = round(int(m.group(1)) / 1000, 1) if m else None
            # the redis port's own rebinding after the runtime's transfer
            m = re.search(r"mvedsua: resumed as .*, (\d+) us", logtext)
            if m:
                r["port_resume_ms"] = round(int(m.group(1)) / 1000, 1)
            if self.mode == "inplace":
                u = st.get("last_update") or {}
                r["outcome"] = u.get("outcome")
                r["runtime_pause_ms"] = u.get("pause_ms")
            if self.mode == "promote":
                u = st.get("last_update") or {}
                r["outcome"], r["stage_after_window"] = u.get("outcome"), st.get("stage")
                r["version_after"] = os.path.basename(st.get("version") or "")
                r["peak_backlog_bytes"] = max(r["peak_backlog_bytes"] or 0, (
                    st.get("log") or {}).get("peak_backlog_bytes") or 0)
            # the probe's timeline, relative to the update request
            p = json.load(open(out))
            off = p["wall0"] - t_req
            t = [x + off for x in p["t"]]
            lat = [x * 1000 for x in p["lat"]]
            win = [l for x, l in zip(t, lat) if 0 <= x <= self.window]
            pre = [l for x, l in zip(t, lat) if -PRE + 0.1 <= x < 0]
            r["probe_errors"], r["probe_first_error"] = p["errors"], p.get("first_error")
            r["load_errors"] = self.load_errors[:5]
            r["window"] = {"requests": len(win), "max_ms": round(max(win), 3) if win else None,
                           "p99_ms": round(pctl(win, 99), 3) if win else None,
                           "p50_ms": round(pctl(win, 50), 3) if win else None}
            r["before"] = {"requests": len(pre), "max_ms": round(max(pre), 3) if pre else None,
                           "p99_ms": round(pctl(pre, 99), 3) if pre else None}
            buckets = {}
            for x, l in zip(t, lat):
                b = int((x + PRE) // BUCKET)
                buckets[b] = max(buckets.get(b, 0), l)
            r["timeline"] = [[round(b * BUCKET - PRE, 3), round(v, 3)]
                             for b, v in sorted(buckets.items())]
            r["returned_within_window"] = (r["update_s"] or 0) <= self.window
            wrong = []  # what went wrong, other than timing

            def need(cond, what):
                if not cond:
                    wrong.append(what)
            need(p["errors"] == 0, "the probe saw %d error(s), the first: %s" % (
                p["errors"], p.get("first_error")))
            need(not self.load_errors, "redis-benchmark printed: %s" % "; ".join(
                self.load_errors[:3]))
            need(r["load_alive"], "a redis-benchmark process died")
            need(r["window"]["requests"] > 0, "no probe request in the window")
            if self.mode != "none":
                need(rc == 0, "the update command failed (%d): %s" % (rc, reply))
            if self.mode == "inplace":
                need(r["outcome"] == "finished", "in-place update: %s" % reply)
            if self.mode in ("mve", "promote"):
                need(reply.startswith("caught up"), "update: %s" % reply)
            if self.mode == "mve":
                need(r["stage_after_window"] == "outdated-leader",
                     "stage %s after the window, not outdated-leader (last update: %s)" % (
                         r["stage_after_window"], json.dumps(st.get("last_update"))))
                need(r["outcome_after_rollback"] == "rolled-back"
                     and "requested by the operator" in json.dumps(st2.get("last_update")),
                     "rollback: %s (last update: %s)" % (
                         rb_reply, json.dumps(st2.get("last_update"))))
            if self.mode == "promote":
                need(r["promote_reply"].startswith(("promoted", "finished")),
                     "promote: %s" % r["promote_reply"])
                need(r["finish_reply"].startswith("finished"), "finish: %s" % r["finish_reply"])
                need(r["stage_after_window"] == "single-leader"
                     and r["version_after"] == os.path.basename(new)
                     and r["outcome"] == "finished",
                     "after promotion: stage %s, version %s, outcome %s" % (
                         r["stage_after_window"], r["version_after"], r["outcome"]))
            r["valid"] = not wrong
            if wrong:
                r["error"] = "; ".join(wrong)
        except Exception as e:  # reported in the JSON, the run left out
            r["valid"], r["error"] = False, repr(e)
        finally:
            self.stop()
        return r

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run(["rm", "-rf", self.work])


# --------------------------------------------------------------- reporting
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def summarise(runs, sizes, modes):
    out = []
    for n in sizes:
        row = {"keys": n}
        for mode in modes:
            rs = [r for r in runs if r["keys"] == n and r["mode"] == mode and r["valid"]]
            e = {"runs": len(rs),
                 "max_ms": med(r["window"]["max_ms"] for r in rs),
                 "p99_ms": med(r["window"]["p99_ms"] for r in rs),
                 "p50_ms": med(r["window"]["p50_ms"] for r in rs),
                 "window_rps": med(r.get("window_rps") for r in rs),
                 "max_ms_all": [r["window"]["max_ms"] for r in rs],
                 "p99_ms_all": [r["window"]["p99_ms"] for r in rs],
                 "port_resume_ms": med(r.get("port_resume_ms") for r in rs),
                 "update_s": med(r["update_s"] for r in rs),
                 "state_transfer_ms": med(r.get("state_transfer_ms") for r in rs)}
            if mode in ("mve", "mve-nobatch"):
                e["peak_backlog_bytes"] = max((r["peak_backlog_bytes"] or 0 for r in rs), default=None)
                e["follower_private_kb"] = med(r["follower_peak"].get("private_kb") for r in rs)
                e["follower_pss_kb"] = med(r["follower_peak"].get("pss_kb") for r in rs)
                e["follower_rss_kb"] = med(r["follower_peak"].get("rss_kb") for r in rs)
                e["leader_rss_kb"] = med((r["leader_before"] or {}).get("rss_kb") for r in rs)
            if mode == "inplace":
                e["runtime_pause_ms"] = med(r.get("runtime_pause_ms") for r in rs)
            if mode == "promote":
                e["peak_backlog_bytes"] = max((r["peak_backlog_bytes"] or 0 for r in rs), default=None)
                e["t_caught_up_s"] = med(r.get("t_caught_up_s") for r in rs)
                e["t_promoted_s"] = med(r.get("t_promoted_s") for r in rs)
            row[mode] = e
        # ratios: per repetition against the no-update run of the same
        # repetition (adjacent in time), then the median
        for mode in modes:
            if mode == "none":
                continue
            per = {"max": [], "p99": [], "rps": []}
            for rep in sorted(set(r["rep"] for r in runs)):
                a = [r for r in runs if r["keys"] == n and r["rep"] == rep and r["valid"]]
                m = next((r for r in a if r["mode"] == mode), None)
                b = next((r for r in a if r["mode"] == "none"), None)
                if m and b:
                    per["max"].append(ratio(m["window"]["max_ms"], b["window"]["max_ms"]))
                    per["p99"].append(ratio(m["window"]["p99_ms"], b["window"]["p99_ms"]))
                    per["rps"].append(ratio(m.get("window_rps"), b.get("window_rps")))
            for k in per:
                row[mode][k + "_vs_none"] = med(per[k])
                row[mode][k + "_vs_none_all"] = per[k]
        out.append(row)
    return out


def write_timelines(runs, sizes, modes, results, mach, target):
    """Per size: the repetition whose mve max is the median, every mode of it."""
    files = {}
    for n in sizes:
        mv = sorted((r for r in runs if r["keys"] == n and r["mode"] == "mve" and r["valid"]),
                    key=lambda r: r["window"]["max_ms"])
        if not mv:
            continue
        rep = mv[(len(mv) - 1) // 2]["rep"]
        cols = {m: dict((t, v) for t, v in next(
            (r["timeline"] for r in runs if r["keys"] == n and r["mode"] == m
             and r["rep"] == rep and r["valid"]), [])) for m in modes}
        ts = sorted(set(t for c in cols.values() for t in c))
        path = os.path.join(results, "%s-%d.csv" % (target.prefix, n))
        with open(path, "w") as f:
            f.write("# update pause timeline, %s with %d keys, repetition %d; "
                    "machine: %d cores, %s, Linux %s\n" % (target.label, n, rep, mach["cores"],
                                                           mach["cpu"], mach["kernel"]))
            f.write("# time_s (from the update request), then per mode the probe's max "
                    "latency in ms in the 10 ms bucket starting there (NaN: no request)\n")
            f.write("time_s," + ",".join(modes) + "\n")
            for t in ts:
                f.write("%.3f,%s\n" % (t, ",".join(
                    "%.3f" % cols[m][t] if t in cols[m] else "NaN" for m in modes)))
        files[n] = {"csv": os.path.basename(path), "rep": rep,
                    "update_s": {m: next((r["update_s"] for r in runs if r["keys"] == n
                                          and r["mode"] == m and r["rep"] == rep), None)
                                 for m in modes}}
    return files


def write_md(doc, path):
    m, w = doc["machine"], doc["workload"]
    for s in doc["results"]:  # modes left out with --modes: n/a
        for mode in ("inplace", "mve"):
            s.setdefault(mode, dict.fromkeys(
                ("max_ms", "update_s", "window_rps", "state_transfer_ms",
                 "follower_private_kb", "follower_pss_kb", "follower_rss_kb",
                 "leader_rss_kb")))
    L = []
    L.append("### Update pause under load (%s: no update, in place, multi-version)\n"
             % doc["update"])
    L.append("%d cores, %s, Linux %s (shared, noisy: compare ratios). Load: %s. Probe: %s. "
             "The window is the %s s from the update request; figures are medians over %d "
             "interleaved repetition(s), each on a fresh server; the ratios are the medians of "
             "each repetition's ratio to its own no-update run (%s). Load average of the machine "
             "%s at the start, %s at the end (%s to %s at the runs' starts).\n" % (
                             m["cores"], m["cpu"], m["kernel"], w["load"], w["probe"],
                             "/".join("%g" % x for x in sorted(set(w["window_s"].values()))),
                             w["repetitions"],
                             "all runs valid" if doc["all_valid"] else
                             "%d of %d runs valid: see update-pause.json" % (
                                 sum(r["valid"] for r in doc["runs"]), len(doc["runs"])),
                             doc["loadavg"]["start"], doc["loadavg"]["end"],
                             doc["loadavg"]["runs_min"], doc["loadavg"]["runs_max"]))
    L.append("| keys | no update: max / p99 | in place: max / p99 | ratio to no update | "
             "multi-version: max / p99 | ratio to no update | update command (in place / multi-version) |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|")

    def mp(e):
        return "n/a" if e["max_ms"] is None else "%.1f / %.1f ms" % (e["max_ms"], e["p99_ms"])

    def rt(e):
        return "n/a" if e.get("max_vs_none") is None else "x%.2f / x%.2f" % (
            e["max_vs_none"], e["p99_vs_none"])
    for s in doc["results"]:
        L.append("| %d | %s | %s | %s | %s | %s | %s / %s |" % (
            s["keys"], mp(s["none"]), mp(s["inplace"]), rt(s["inplace"]), mp(s["mve"]),
            rt(s["mve"]),
            "%.2f s" % s["inplace"]["update_s"] if s["inplace"]["update_s"] is not None else "n/a",
            "%.2f s" % s["mve"]["update_s"] if s["mve"]["update_s"] is not None else "n/a"))
    L.append("| *MVEDSUa, 1M keys (redis)* | *100 ms max* | *5040 ms (Kitsune)* | *x50* | "
             "*117 ms (2^24-entry ring)* | *x1.17* | |")
    L.append("| *issue's goal* | | | | | *within x1.5* | |")
    L.append("")
    for s in doc["results"]:
        i, v = s["inplace"], s["mve"]
        if i.get("port_resume_ms") is None:
            continue
        L.append("%d keys, medians: the in-place pause as the runtime measured it %s ms, of "
                 "which the state transfer %s ms and the port's rebinding (`mvedsua: resumed "
                 "as ...` in redis' log) %s ms; in the follower of the multi-version update, "
                 "the state transfer %s ms and the rebinding %s ms.\n" % (
                     s["keys"], *(None if x is None else round(x, 1) for x in (
                         i.get("runtime_pause_ms"), i.get("state_transfer_ms"),
                         i.get("port_resume_ms"), v.get("state_transfer_ms"),
                         v.get("port_resume_ms")))))
    L.append("The spread: each valid run's max / p99 in the window, in the order of the "
             "repetitions.\n")
    L.append("| keys | mode | max, ms | p99, ms |")
    L.append("|---:|---|---|---|")
    for s in doc["results"]:
        for mode in [x for x in ("none", "inplace", "mve", "promote") if s.get(x, {}).get("runs")]:
            L.append("| %d | %s | %s | %s |" % (
                s["keys"], mode, " ".join("%.1f" % x for x in s[mode]["max_ms_all"]),
                " ".join("%.1f" % x for x in s[mode]["p99_ms_all"])))
    L.append("")
    if "mve-nobatch" in doc["results"][0]:
        L.append("The same multi-version update with the follower left under SCHED_OTHER "
                 "(`MVEDSUA_MVE_FOLLOWER_BATCH=0`), interleaved with the runs above:\n")
        L.append("| keys | follower SCHED_BATCH: max / p99 | ratio to no update | "
                 "follower SCHED_OTHER: max / p99 | ratio to no update |")
        L.append("|---:|---:|---:|---:|---:|")
        for s in doc["results"]:
            L.append("| %d | %s | %s | %s | %s |" % (
                s["keys"], mp(s["mve"]), rt(s["mve"]), mp(s["mve-nobatch"]),
                rt(s["mve-nobatch"])))
        L.append("")
    L.append("The load's throughput in the same window (the two redis-benchmark processes' "
             "rates over their 250 ms progress intervals, summed):\n")
    L.append("| keys | no update | in place | ratio | multi-version | ratio |")
    L.append("|---:|---:|---:|---:|---:|---:|")
    fr = lambda e: "n/a" if e["window_rps"] is None else "%.0f/s" % e["window_rps"]
    fx = lambda e: "n/a" if e.get("rps_vs_none") is None else "x%.2f" % e["rps_vs_none"]
    for s in doc["results"]:
        L.append("| %d | %s | %s | %s | %s | %s |" % (
            s["keys"], fr(s["none"]), fr(s["inplace"]), fx(s["inplace"]), fr(s["mve"]),
            fx(s["mve"])))
    L.append("")
    if "promote" in doc["results"][0]:
        L.append("The whole multi-version update (`update`, then `promote` as soon as it "
                 "returned, %s), same window and load:\n" % (
                     "which ends the old version: a program with threads is not followed "
                     "by it; %s alone at the end" % doc["to"] if doc["server"] == "redis" else
                     "then `finish`: %s alone at the end" % doc["to"]))
        L.append("| keys | max / p99 | ratio to no update | load throughput, ratio | "
                 "caught up / promoted / finished after | log peak |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for s in doc["results"]:
            e = s["promote"]
            L.append("| %d | %s | %s | %s | %s | %s |" % (
                s["keys"], mp(e), rt(e), fx(e),
                "n/a" if e["update_s"] is None else "%.2f / %.2f / %.2f s" % (
                    e["t_caught_up_s"], e["t_promoted_s"], e["update_s"]),
                "n/a" if not e.get("peak_backlog_bytes") else "%.1f MB" % (
                    e["peak_backlog_bytes"] / 2**20)))
        L.append("| *MVEDSUa, 1M keys, promoting at once* | *3000 ms* | *x30* | | | |")
        L.append("")
    L.append("Memory of the multi-version update (the follower applying %s, then "
             % doc["update"] +
             "following): the log's peak backlog (`status --json`), and the follower's peak "
             "resident memory sampled every 50 ms from `/proc/PID/smaps_rollup`: *private* is "
             "what it holds alone (its extra memory over the leader's), beside the leader's RSS "
             "before the update.\n")
    L.append("| keys | log peak | follower private (extra) | follower Pss | follower RSS | "
             "leader RSS before | transfer in the follower |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|")
    for s in doc["results"]:
        e = s["mve"]
        f = lambda kb: "n/a" if kb is None else "%.1f MB" % (kb / 1024)
        L.append("| %d | %s | %s | %s | %s | %s | %s |" % (
            s["keys"],
            "n/a" if e.get("peak_backlog_bytes") is None else "%.1f MB" % (e["peak_backlog_bytes"] / 2**20),
            f(e["follower_private_kb"]), f(e["follower_pss_kb"]), f(e["follower_rss_kb"]),
            f(e["leader_rss_kb"]),
            "n/a" if e["state_transfer_ms"] is None else "%.0f ms" % e["state_transfer_ms"]))
    L.append("| *MVEDSUa* | *512 MB ring to hide the pause* | | | | | *6.2 s (redis, 1M keys)* |")
    L.append("| *issue's goal* | *under 64 MB* | | | | | |")
    L.append("")
    for n, t in sorted(doc["timelines"].items(), key=lambda x: int(x[0])):
        L.append("Timeline, %s keys: `%s` (repetition %d)." % (n, t["csv"], t["rep"]))
        L.append("")
    open(path, "w").write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", nargs=4)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--keys", default="10000 100000 1000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--window", type=float, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--modes", default="none inplace mve promote",
                    help="which of none, inplace, mve, promote, mve-nobatch "
                         "(mve with the follower's SCHED_BATCH off) to run")
    ap.add_argument("--server", choices=("kvd", "redis"), default="kvd")
    ap.add_argument("--redis-step", nargs=2, metavar=("FROM", "TO"))
    a = ap.parse_args()
    if a.probe:
        probe_main(int(a.probe[0]), int(a.probe[1]), float(a.probe[2]), a.probe[3])
        return
    a.build = os.path.abspath(a.build)
    a.run, a.ctl = a.build + "/bin/mvedsua-run", a.build + "/bin/mvedsua-ctl"
    if a.redis_step and a.server != "redis":
        sys.exit("update-pause: --redis-step needs --server redis")
    a.target = Target.redis(a.build, a.redis_step) if a.server == "redis" else \
        Target.kvd(a.build)
    for f in (a.run, a.ctl, a.target.old, a.target.new):
        if not os.path.exists(f):
            sys.exit("update-pause: missing %s (%s)" % (f, "run ports/redis/build.sh"
                     if a.server == "redis" else "build the kvd-examples target"))
    for tool in ("redis-benchmark", "redis-cli"):
        if subprocess.run(["sh", "-c", "command -v " + tool], stdout=subprocess.DEVNULL).returncode:
            sys.exit("update-pause: needs " + tool)
    os.makedirs(a.results, exist_ok=True)
    sizes = [int(x) for x in a.keys.split()]
    modes = a.modes.split()
    known = {"none", "inplace", "mve", "promote"} | set(VARIANTS)
    if "none" not in modes or set(modes) - known:
        sys.exit("update-pause: --modes takes none (always) and any of "
                 "inplace, mve, promote, " + ", ".join(VARIANTS))
    if a.quick:
        global PRE
        a.reps, PRE = 1, 0.5

    def window(n):
        if a.window:
            return a.window
        if a.quick:
            return 1.0
        return 3.0 if n < 1000000 else 5.0
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    runs = []
    for rep in range(1, a.reps + 1):
        for n in sizes:
            for mode in modes:
                print("update-pause: repetition %d of %d, %d keys, %s" % (rep, a.reps, n, mode),
                      file=sys.stderr, flush=True)
                r = Run(a, n, mode, rep, window(n)).execute()
                if not r["valid"]:
                    print("update-pause: run invalid: %s" % json.dumps(
                        {k: v for k, v in r.items() if k != "timeline"}), file=sys.stderr)
                runs.append(r)
    mach = machine()
    tg = a.target
    doc = {"benchmark": tg.prefix, "server": tg.name, "update": tg.label,
           "from": tg.so("old"), "to": tg.so("new"),
           "update_detail": "every entry transformed (examples/kvd/kvd-1-2.xf)"
           if tg.name == "kvd" else "the redis port's step, persistence off "
           "(ports/redis, docs/ports/redis.md)",
           "machine": mach,
           "workload": {
               "load": "redis-benchmark -c 5 -r N -t get, and the same with -t set, "
                       "random keys among the N (%s)" % subprocess.run(
                           ["redis-benchmark", "--version"], stdout=subprocess.PIPE,
                           text=True).stdout.strip(),
               "probe": "one connection, a GET of a random key due every %g ms, latency "
                        "counted from when it was due" % (1000.0 / RATE),
               "window_s": {str(n): window(n) for n in sizes},
               "probe_before_s": PRE, "bucket_s": BUCKET,
               "repetitions": a.reps, "quick": a.quick,
               "statistic": "median of the valid repetitions"},
           "anchors": {"mvedsua_paper_1M_keys_max_latency_ms": {
                           "no_update": 100, "inplace_kitsune": 5040, "mvedsua": 117},
                       "mvedsua_paper_ring_bytes": 512 * 2**20,
                       "goal_mve_vs_no_update": 1.5, "goal_log_peak_bytes": 64 * 2**20},
           "loadavg": {"start": load_start,
                       "end": " ".join(open("/proc/loadavg").read().split()[:3]),
                       "runs_min": min(r["loadavg"] for r in runs),
                       "runs_max": max(r["loadavg"] for r in runs)},
           "all_valid": all(r["valid"] for r in runs),
           "results": summarise(runs, sizes, modes)}
    doc["timelines"] = {str(n): v for n, v in write_timelines(runs, sizes, modes, a.results,
                                                                mach, tg).items()}
    doc["runs"] = [{k: v for k, v in r.items() if k != "timeline"} for r in runs]
    out = os.path.join(a.results, tg.prefix)
    json.dump(doc, open(out + ".json", "w"), indent=2)
    write_md(doc, out + ".md")
    print(open(out + ".md").read())
    bad = [r for r in runs if not r["valid"]]
    for r in bad:
        print("update-pause: FAILED: repetition %d, %d keys, %s: %s" % (
            r["rep"], r["keys"], r["mode"], r.get("error")), file=sys.stderr)
    if bad:
        sys.exit("update-pause: %d of %d runs failed (see above and %s.json)" % (
            len(bad), len(runs), out))


if __name__ == "__main__":
    main()
