#!/usr/bin/env python3
"""Runs the first memcached version built by ports/memcached/build.sh under
mvedsua-run (4 worker threads), fills it, and applies every later version in
place, one after the other, under load: memcslap (Debian's libmemcached-tools:
4 client threads setting keys, run after run) and four checking clients, each
setting, reading back and incrementing its own keys and comparing every reply
with the exact expected bytes. Connections are left open across the updates:
idle ones, one in the middle of sending a value, one holding a CAS unique.
Then checks that no client saw an error, that every filled key has its value,
flags and CAS unique as before (read back whole with gets), that the
connections opened before are served by the last version, that fresh
connections reach every worker, and that the server exits 0 on SIGTERM.

With --mode mve each update is a multi-version one instead: `mvedsua-ctl
update NEXT.so` (the follower updates, its ten relaunched threads replay
their lanes until caught up), a second of following under the load, then
`promote` (the old version then follows the new one, the updated-leader
stage) and `finish` ("finished: ... runs alone"). Main hands a new
connection to a worker through a queue in memory next to a count on the
worker's eventfd: the follower's worker finds it because the threads' calls
are replayed in the leader's order (docs/threads.md), which
MVEDSUA_MVE_ORDER_LANES=0 would turn off.

With --bug PORT2 (after the chain), a second server with SASL on (-S, PLAIN
over a password database) runs the first version; a client authenticates
and stores a key. A multi-version update to the version the injected bug
was made from (bugs.list), with its rules (rules/VERSION.rules: the fixed
password check reads the file to its end), is caught up, followed while
fresh clients authenticate, promoted (the old version then follows with the
%reverse rule while more clients authenticate) and finished. Then a
multi-version update to the version with the bug (its fix of CVE-2026-47784 accepts a prefix of
the password) is caught up; a client then authenticates with a prefix of the
password: the follower's reply differs from the leader's "Auth failure", the
update must be rolled back, the report must name the request (the SASL
authentication), and the clients must not notice.

  check-updates.py MVEDSUA_RUN MVEDSUA_CTL PORT_DIR WORK_DIR PORT [--keys N]
                   [--mode inplace|mve] [--bug PORT2]

Prints one line per check (for FileCheck) and exits 1 if any failed."""
import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "lib"))
from mcproto import Client  # noqa: E402

failures = []

def check(label, ok, detail=""):
    print("%s: %s%s" % (label, "ok" if ok else "FAILED", (" (%s)" % detail) if detail and not ok else ""))
    sys.stdout.flush()
    if not ok:
        failures.append(label)


def stop(server, log):
    """SIGTERM, then SIGKILL to its session after 30 s: the exit status."""
    server.send_signal(signal.SIGTERM)
    try:
        rc = server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        rc = server.wait()
    log.close()
    return rc


def value_of(i):
    """The filled key i's value and flags: lengths from 1 byte to 300 KB (an
    item chunked over several slab chunks), flags varying."""
    n = (i * 37) % 2000 + 1
    if i % 1000 == 7:
        n = 300 * 1024
    return (b"%d:" % i + b"v" * n)[:n], (i * 2654435761) % (1 << 32)


def fill(c, nkeys):
    batch = []
    for i in range(nkeys):
        data, flags = value_of(i)
        batch.append(b"set fill:%d %d 0 %d noreply\r\n%s\r\n" % (i, flags, len(data), data))
        if len(batch) == 200:
            c.send(b"".join(batch))
            batch = []
    c.send(b"".join(batch))
    assert c.request(b"version").startswith(b"VERSION ")


def read_all(c, nkeys):
    """Every filled key with gets, 100 per request: {key: (flags, data, cas)}."""
    got = {}
    for start in range(0, nkeys, 100):
        keys = b" ".join(b"fill:%d" % i for i in range(start, min(nkeys, start + 100)))
        c.send(b"gets " + keys + b"\r\n")
        while True:
            line = c.line()
            if line == b"END\r\n":
                break
            _, key, flags, n, cas = line.split()
            got[key.decode()] = (int(flags), c.exact(int(n) + 2)[:-2], int(cas))
    return got


class Checker(threading.Thread):
    """A client that sets, gets and increments its own keys and compares
    every reply with the exact bytes expected."""

    def __init__(self, port, idx):
        super().__init__(daemon=True)
        self.c = Client(port)
        self.idx = idx
        self.stop = threading.Event()
        self.ops = 0
        self.errors = []

    def run(self):
        n = 0
        try:
            self.c.request(b"set ctr:%d 0 0 1" % self.idx, b"0")
            while not self.stop.is_set():
                key = b"chk:%d:%d" % (self.idx, n % 500)
                data = b"%d-%d" % (self.idx, n) * (1 + n % 7)
                for cmd, payload, want in (
                        (b"set %s %d 0 %d" % (key, n % 65536, len(data)), data, b"STORED\r\n"),
                        (b"get " + key, None, b"VALUE %s %d %d\r\n%s\r\nEND\r\n" % (key, n % 65536, len(data), data)),
                        (b"incr ctr:%d 1" % self.idx, None, b"%d\r\n" % (n + 1))):
                    r = self.c.request(cmd, payload)
                    if r != want:
                        self.errors.append((cmd, r[:80], want[:80]))
                self.ops += 3
                n += 1
        except Exception as e:  # a dropped connection is an error
            self.errors.append(("exception", repr(e)))


class MemcslapLoop(threading.Thread):
    """memcslap runs (4 client threads, set, 5000 keys each) one after the
    other until stopped, so that one is running whenever an update comes."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.results = []

    def run(self):
        while not self.stop.is_set():
            p = subprocess.run(["memcslap", "--servers=127.0.0.1:%d" % self.port, "--concurrency=4",
                                "--execute-number=5000", "--test=set"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
            errors = [l for l in p.stdout.splitlines() if "ail" in l or "rror" in l]
            self.results.append((p.returncode, errors))


def binary(s, op, key=b"", value=b"", extras=b""):
    """One request of memcached's binary protocol: (status, body)."""
    s.sendall(struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                          len(key) + len(extras) + len(value), 0, 0) + extras + key + value)

    def exact(n):
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                raise EOFError("the server closed the connection")
            out += chunk
        return out
    header = struct.unpack(">BBHBBHIIQ", exact(24))
    return header[5], exact(header[6])


def sasl_client(port, password):
    """A connection authenticated (or not) as alice with SASL PLAIN: the
    connection and the authentication's (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, binary(s, 0x21, b"PLAIN", b"\0alice@mvedsua\0" + password)


def authenticated_get(port):
    """A fresh connection authenticated as alice, then a get of "k": the
    authentication's status and the value's flags and bytes."""
    s, (status, _) = sasl_client(port, b"secret")
    with s:
        return status, binary(s, 0x00, b"k")


def replayed(ctl):
    """The status once the follower has replayed everything the leader
    recorded (or is gone), or after 3 s (the background threads' sleeps in
    the follower are real: a few of their records may wait a while)."""
    for _ in range(60):
        st = json.loads(ctl("status", "--json").stdout)
        if not st.get("follower_pid") or not (st.get("log") or {}).get("backlog_records"):
            return st
        time.sleep(0.05)
    return st


def sasl_chain(a, ctl, first, base):
    """The multi-version update first -> base on the SASL server, with the
    rules of base: every stage while fresh clients authenticate."""
    rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules", base + ".rules")
    want = (0, (0, struct.pack(">I", 7) + b"before"))

    def step(label, answer, *args):
        r = ctl(*args)
        check("SASL chain: " + label, r.returncode == 0 and r.stdout.startswith(answer),
              (r.stdout + r.stderr).strip())

    def clients(label, stage):
        """Five fresh clients authenticate and read k; the follower, having
        replayed them, still follows in `stage`, no wait for the order of
        calls across threads timed out."""
        seen = [authenticated_get(a.bug) for _ in range(5)]
        st = replayed(ctl)
        check("SASL chain: " + label,
              seen == [want] * 5 and st["stage"] == stage and st.get("follower_pid")
              and st["log"]["order_timeouts"] == 0,
              "%r, stage %s, log %s: %s" % (seen, st["stage"], st.get("log"),
                                            (st["last_update"] or {}).get("reason")))

    step("update %s -> %s with %s: caught up" % (first, base, os.path.basename(rules)),
         "caught up", "update", "--rules", rules, os.path.join(a.portdir, base + ".so"))
    clients("5 clients authenticated and read k while the follower follows", "outdated-leader")
    step("promoted", "promoted", "promote")
    clients("5 more while the old version follows the new one", "updated-leader")
    step("finished", "finished", "finish")


def try_bug(a, work):
    """The SASL chain (sasl_chain), then the injected bug: a multi-version
    update from the version it was made from to it, on a server with SASL
    authentication, rolled back when a client authenticates with a prefix of
    the password."""
    name, base = open(os.path.join(a.portdir, "bugs.list")).read().split()
    versions = open(os.path.join(a.portdir, "versions.list")).read().split()
    first = versions[0] if versions[0] != base else None
    sasl = os.path.join(work, "sasl")
    os.makedirs(sasl, exist_ok=True)
    with open(os.path.join(sasl, "memcached.conf"), "w") as f:
        f.write("mech_list: plain\n")
    with open(os.path.join(sasl, "pwdb"), "w") as f:
        # (the server's realm is appended to a user name without one)
        f.write("alice@mvedsua:secret\n")
    env = dict(os.environ, SASL_CONF_PATH=sasl, MEMCACHED_SASL_PWDB=os.path.join(sasl, "pwdb"))
    sock = os.path.join(work, "bug.sock")
    log = open(os.path.join(work, "bug-server.log"), "w")
    server = subprocess.Popen(
        [a.run, "--control", sock, os.path.join(a.portdir, (first or base) + ".so"),
         "-u", "root", "-p", str(a.bug), "-U", "0", "-l", "127.0.0.1", "-t", "4", "-S"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def ctl(*args):
        return subprocess.run([a.ctl, "--control", sock] + list(args),
                              capture_output=True, text=True, timeout=120)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", a.bug)).close()
                break
            except OSError:
                time.sleep(0.05)
        good, auth = sasl_client(a.bug, b"secret")
        stored = binary(good, 0x01, b"k", b"before", struct.pack(">II", 7, 0))
        print("bug server: %s with SASL: alice authenticated %r, set %r" % (
            first or base, auth, stored[0]))
        if first:
            sasl_chain(a, ctl, first, base)
        _, wrong = sasl_client(a.bug, b"sec")
        print("bug server: a prefix of the password: %r" % (wrong,))
        r = ctl("update", os.path.join(a.portdir, name + ".so"))
        check("update to %s (injected bug): caught up" % name,
              r.returncode == 0 and r.stdout.startswith("caught up"), (r.stdout + r.stderr).strip())
        time.sleep(0.5)
        _, reply = sasl_client(a.bug, b"sec")
        check("the client gets the running version's answer", reply == wrong, repr(reply))
        st = json.loads(ctl("status", "--json").stdout)
        for _ in range(100):
            if st["last_update"]["outcome"] != "in-progress":
                break
            time.sleep(0.1)
            st = json.loads(ctl("status", "--json").stdout)
        reason = st["last_update"].get("reason") or ""
        with open(os.path.join(work, "bug-report.txt"), "w") as f:
            f.write(reason)
        lines = [l.strip() for l in reason.splitlines()]
        print("injected bug: %s: %s" % (st["last_update"]["outcome"], " / ".join(lines[:5])))
        # The report names the thread, the call (the reply's write) and the
        # request read on that descriptor: a SASL_AUTH (0x21) with PLAIN.
        check("injected bug: rolled back on a divergence in the reply to the SASL authentication",
              st["last_update"]["outcome"] == "rolled-back" and "divergence at record" in reason
              and "PLAIN" in reason and st["stage"] == "single-leader" and not st.get("follower_pid"))
        check("injected bug: the server serves on",
              binary(good, 0x00, b"k") == (0, struct.pack(">I", 7) + b"before") and server.poll() is None)
    finally:
        rc = stop(server, log)
    check("bug server: exit status %d on SIGTERM" % rc, rc == 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("ctl")
    ap.add_argument("portdir")
    ap.add_argument("work")
    ap.add_argument("port", type=int)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--mode", choices=("inplace", "mve"), default="inplace")
    ap.add_argument("--bug", type=int, metavar="PORT2")
    a = ap.parse_args()

    versions = open(os.path.join(a.portdir, "versions.list")).read().split()
    os.makedirs(a.work, exist_ok=True)
    sock = os.path.join(a.work, "ctl.sock")
    log = open(os.path.join(a.work, "server.log"), "w")
    server = subprocess.Popen(
        [a.run, "--control", sock, os.path.join(a.portdir, versions[0] + ".so"),
         "-u", "root", "-p", str(a.port), "-U", "0", "-l", "127.0.0.1", "-t", "4", "-m", "512"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ctl(*args, timeout=120):
        return subprocess.run([a.ctl, "--control", sock] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    try:
        for _ in range(200):
            try:
                Client(a.port).request(b"version")
                break
            except OSError:
                time.sleep(0.05)
        c = Client(a.port)
        fill(c, a.keys)
        before = read_all(c, a.keys)
        print("versions: %d, from %s to %s" % (len(versions), versions[0], versions[-1]))
        print("filled: %d keys" % len(before))
        print("first version: %s" % c.request(b"version").decode().strip())

        idle = [Client(a.port) for _ in range(8)]
        for i, x in enumerate(idle):
            assert x.request(b"set idle:%d 0 0 1" % i, b"%d" % (i % 10)) == b"STORED\r\n"
        half = Client(a.port)  # a value cut in two by the updates
        half.send(b"set half 5 0 10\r\nabcde")
        held = Client(a.port)  # a CAS unique read before, used after
        held.request(b"set cas-key 0 0 3", b"old")
        cas = int(held.request(b"gets cas-key").split()[4])

        checkers = [Checker(a.port, i) for i in range(4)]
        for t in checkers:
            t.start()
        slap = MemcslapLoop(a.port)
        slap.start()
        time.sleep(1.0)

        def status():
            return json.loads(ctl("status", "--json").stdout)

        pauses = []
        for v in versions[1:]:
            so = os.path.join(a.portdir, v + ".so")
            before_ops = sum(t.ops for t in checkers)
            if a.mode == "inplace":
                r = ctl("update", "--inplace", so)
                ok = r.returncode == 0 and r.stdout.startswith("finished:")
                pauses.append(r.stdout.split("pause ", 1)[1].split(",", 1)[0] if "pause " in r.stdout else "?")
                detail = "" if ok else (r.stdout + r.stderr).strip()
            else:
                t0 = time.monotonic()
                r = ctl("update", so)
                t1 = time.monotonic()
                caught = r.returncode == 0 and r.stdout.startswith("caught up")
                st = status() if caught else {}
                time.sleep(1.0)  # the follower follows the load
                st2 = status() if caught else {}
                following = all(x.get("stage") == "outdated-leader" and x.get("follower_pid") for x in (st, st2))
                t2 = time.monotonic()
                p = ctl("promote") if caught else r
                t3 = time.monotonic()
                promoted = p.returncode == 0 and p.stdout.startswith("promoted:")
                if promoted:  # the old version follows the new one; then it ends
                    p = ctl("finish")
                    promoted = p.returncode == 0 and p.stdout.startswith("finished:") and "runs alone" in p.stdout
                pauses.append("%.1f s to catch up, promoted in %.0f ms" % (t1 - t0, 1000 * (t3 - t2)))
                ok = caught and following and promoted
                detail = "" if ok else "update: %r; stages %r %r; promote: %r; reason %r" % (
                    (r.stdout + r.stderr).strip(), st.get("stage"), st2.get("stage"),
                    (p.stdout + p.stderr).strip(), (status().get("last_update") or {}).get("reason"))
            time.sleep(1.0)
            served = sum(t.ops for t in checkers) > before_ops
            check("update to %s%s" % (v, ": caught up, followed, promoted, runs alone" if a.mode == "mve" else ""),
                  ok and served and server.poll() is None, detail)
        print(("pauses: %s" if a.mode == "inplace" else "updates: %s") % "; ".join(pauses))

        time.sleep(1.0)
        slap.stop.set()
        for t in checkers:
            t.stop.set()
        for t in checkers:
            t.join(60)
        slap.join(300)
        runs = len(slap.results)
        bad = [r for r in slap.results if r[0] != 0 or r[1]]
        check("memcslap: %s runs, all exit 0 without errors" % ("several" if runs > 1 else runs),
              runs > 1 and not bad, repr(bad[:2]))
        ops = sum(t.ops for t in checkers)
        errs = [e for t in checkers for e in t.errors]
        check("checking clients: every reply as expected, 0 errors", ops > 0 and not errs, repr(errs[:3]))
        print("checking clients: %d requests" % ops if ops < 1000 else "checking clients: over 1000 requests")

        after = read_all(c, a.keys)
        lost = [k for k in before if k not in after]
        changed = [k for k in before if k in after and after[k] != before[k]]
        check("filled keys: %d of %d with their values, flags and CAS uniques" % (len(after) - len(changed), len(before)),
              not lost and not changed, "lost %r, changed %r" % (lost[:3], changed[:3]))
        want = {("fill:%d" % i): value_of(i) for i in range(a.keys)}
        check("filled keys: values and flags as set", all((after[k][1], after[k][0]) == want[k] for k in after))

        check("idle connections", all(x.request(b"get idle:%d" % i) == b"VALUE idle:%d 0 1\r\n%d\r\nEND\r\n" % (i, i % 10)
                                      for i, x in enumerate(idle)))
        half.send(b"fghij\r\n")
        check("a value cut in two by the updates", half.reply() == b"STORED\r\n" and
              half.request(b"get half") == b"VALUE half 5 10\r\nabcdefghij\r\nEND\r\n")
        check("a CAS unique from before the updates", held.request(b"cas cas-key 0 0 3 %d" % cas, b"new") == b"STORED\r\n")
        stats = c.stats()
        fresh = [Client(a.port) for _ in range(8)]
        check("fresh connections (every worker)", all(f.request(b"get idle:1") == b"VALUE idle:1 0 1\r\n1\r\nEND\r\n" for f in fresh))
        print("stats: threads %s, curr_items over %d: %s" % (stats.get("threads"), a.keys, int(stats["curr_items"]) >= a.keys))
        st = json.loads(ctl("status", "--json").stdout)
        tasks = os.listdir("/proc/%d/task" % st["leader_pid"])
        print("threads: %d (main, 4 workers, 5 background threads)" % len(tasks))
        check("status: running %s" % versions[-1], versions[-1] in json.dumps(st.get("version", st)))
    finally:
        rc = stop(server, log)
    check("exit status %d on SIGTERM" % rc, rc == 0)
    if a.bug:
        try_bug(a, a.work)
    print("failures: %d" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
