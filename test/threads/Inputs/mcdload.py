"""mcdload.py: what the mcd update tests (mcd-update.py, in place;
mcd-mve.py, multi-version) share: the filled keys and their snapshot, the
checking clients, memcslap run after run, fresh connections (docs/mcd.md)."""
import hashlib
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import mcproto  # noqa: E402

KEYS = 10000
WORKERS = 4


def key(i):
    return b"key:%05d" % i


def value(i):
    return (b"value-%d-" % i) * (1 + i % 7)


def snapshot(c):
    """gets of every filled key: (missing, md5 over keys, flags, data, cas)."""
    missing = 0
    h = hashlib.md5()
    cas = {}
    for start in range(0, KEYS, 1000):
        ks = [key(i) for i in range(start, min(KEYS, start + 1000))]
        v = mcproto.values(c.request(b"gets " + b" ".join(ks)))
        for i, k in zip(range(start, start + len(ks)), ks):
            got = v.get(k.decode())
            if got is None or got[0] != i % 65536 or got[1] != value(i):
                missing += 1
                continue
            h.update(k + b"%d" % got[0] + got[1] + b"%d" % got[2])
            cas[k] = got[2]
    return missing, h.hexdigest(), cas


class Checker:
    """One connection, kept across the updates: sets, reads back and
    increments its own keys, reads filled keys; every reply checked byte for
    byte. run() loops until stop is set (one thread per update)."""

    def __init__(self, n, port):
        self.n = n
        self.c = mcproto.Client(port)
        self.ops = 0
        self.errors = []
        self.stop = threading.Event()
        self.ctr = 0
        assert self.c.request(b"set ctr%d 0 0 1" % n, b"0") == b"STORED\r\n"

    def expect(self, what, got, want):
        self.ops += 1
        if got != want and len(self.errors) < 3:
            self.errors.append("%s: expected %r, got %r" % (what, want[:60], got[:60]))

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                k = b"c%d:%d" % (self.n, i % 64)
                v = b"v%d-%d" % (self.n, i)
                self.expect("set", self.c.request(b"set %s %d 0 %d" % (k, i, len(v)), v), b"STORED\r\n")
                self.expect("get", self.c.request(b"get " + k),
                            b"VALUE %s %d %d\r\n%s\r\nEND\r\n" % (k, i, len(v), v))
                self.ctr += 1
                self.expect("incr", self.c.request(b"incr ctr%d 1" % self.n), b"%d\r\n" % self.ctr)
                j = (i * 7919 + self.n) % KEYS
                self.expect("get filled", self.c.request(b"get " + key(j)),
                            b"VALUE %s %d %d\r\n%s\r\nEND\r\n" % (key(j), j % 65536, len(value(j)), value(j)))
                i += 1
        except Exception as e:  # a closed connection or a timeout
            self.errors.append("connection: %r" % e)


class Slap:
    """memcslap runs (4 client threads, set, 5000 keys each) one after the
    other until stopped, so that one is running whenever the update comes."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.results = []
        self.error_lines = []  # the first few, to say what went wrong
        self.running = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            p = subprocess.Popen(["memcslap", "--servers=127.0.0.1:%d" % self.port, "--concurrency=4",
                                  "--execute-number=5000", "--test=set"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.running.set()
            out = p.communicate(timeout=300)[0]
            errors = [l for l in out.splitlines() if "ail" in l or "rror" in l]
            self.results.append((p.returncode, len(errors)))
            self.error_lines += errors[:3 - len(self.error_lines)]

    def finish(self):
        self.stop.set()
        self.thread.join(300)
        bad = [r for r in self.results if r != (0, 0)]
        return "%d failed%s" % (len(bad), " (exit status, error lines): %r; %r" % (
            bad, self.error_lines) if bad else "")


def fresh_connections(port):
    """2 * WORKERS new connections: round-robin puts two on every worker."""
    ok = 0
    conns = [mcproto.Client(port) for _ in range(2 * WORKERS)]
    for n, c in enumerate(conns):
        if c.request(b"get " + key(n)) == b"VALUE %s %d %d\r\n%s\r\nEND\r\n" % (key(n), n, len(value(n)), value(n)):
            ok += 1
        c.close()
    return "%d of %d answered" % (ok, len(conns))




def start_load(port, checkers):
    """The checkers (one thread each, their counters reset) and memcslap,
    started and sending. Returns (checker threads, slap, ops before)."""
    for ch in checkers:
        ch.ops, ch.errors, ch.stop = 0, [], threading.Event()
    threads = [threading.Thread(target=ch.run, daemon=True) for ch in checkers]
    slap = Slap(port)
    for t in threads:
        t.start()
    slap.running.wait(10)
    return threads, slap


def stop_load(checkers, threads, slap, before):
    """Stops the load; prints memcslap's and the checkers' outcome. True
    when no checker saw a wrong reply."""
    for ch in checkers:
        ch.stop.set()
    for t in threads:
        t.join(60)
    after = sum(ch.ops for ch in checkers)
    print("  memcslap: %s" % slap.finish())
    errors = [e for ch in checkers for e in ch.errors]
    print("  checking clients: replies checked after the update: %s; errors: %d %s"
          % (after > before, len(errors), "; ".join(errors)))
    return not errors


def prepare(port):
    """Fills the keys, takes their snapshot, connects the checkers, a client
    whose value the update will cut in two and one too slow for its
    replies. Returns (client, digest, cas, checkers, pending)."""
    c = mcproto.Client(port)
    c.send(b"".join(b"set %s %d 0 %d noreply\r\n%s\r\n" % (key(i), i % 65536, len(value(i)), value(i))
                    for i in range(KEYS)))
    print("filled:", c.request(b"version").decode().strip(), c.stats().get("curr_items"), "items")
    missing, digest, cas = snapshot(c)
    print("before: %d of %d keys intact, md5 %s" % (KEYS - missing, KEYS, digest))
    checkers = [Checker(n, port) for n in range(4)]
    half = mcproto.Client(port)  # a command whose value is cut by the update
    half.send(b"set half 0 0 10\r\n01234")
    big = bytes(range(256)) * 4096  # 1 MiB
    c.request(b"set big 0 0 %d" % len(big), big)
    slow = mcproto.Client(port)  # a reader too slow for its replies: its
    slow.send(b"get big\r\n" * 8)  # connection waits to write at the update
    time.sleep(0.2)
    return c, digest, cas, checkers, (half, slow, big)


def after_2(c, port, digest, cas, pending):
    """Version 2 serves: the cut value, the pending replies, every key, fresh
    connections, its own commands."""
    half, slow, big = pending
    half.send(b"56789\r\n")
    print("  value split across the update:", half.reply().decode().strip(),
          half.request(b"get half") == b"VALUE half 0 10\r\n0123456789\r\nEND\r\n")
    want = b"VALUE big 0 %d\r\n%s\r\nEND\r\n" % (len(big), big)
    print("  replies pending across the update: %d of 8 intact, then %s" % (
        sum(slow.reply(retrieval=True) == want for _ in range(8)),
        slow.request(b"version").decode().strip()))
    m2, d2, cas2 = snapshot(c)
    print("after 2: %s, %d of %d keys intact, md5 %s, CAS uniques kept: %s" % (
        c.request(b"version").decode().strip(), KEYS - m2, KEYS, d2, cas2 == cas))
    print("  fresh connections:", fresh_connections(port))
    print("  touch:", c.request(b"touch " + key(1) + b" 0").decode().strip(),
          "gat:", c.request(b"gat 0 " + key(2)) == b"VALUE %s 2 %d\r\n%s\r\nEND\r\n" % (key(2), len(value(2)), value(2)),
          "gats:", re.fullmatch(rb"VALUE key:00003 3 \d+ %d\r\n.*END\r\n" % cas[key(3)],
                                c.request(b"gats 0 " + key(3)), re.S) is not None)
    items = c.stats(b"items")
    print("  stats items: %s items" % items.get("items:1:number"))


def after_3(c, port, digest, cas, checkers):
    """Version 3 serves: every key, fresh connections, stats threads, the CAS
    counter carried over, each checker's counter."""
    m3, d3, cas3 = snapshot(c)
    print("after 3: %s, %d of %d keys intact, md5 %s, CAS uniques kept: %s" % (
        c.request(b"version").decode().strip(), KEYS - m3, KEYS, d3, cas3 == cas))
    print("  fresh connections:", fresh_connections(port))
    t = c.stats(b"threads")
    print("  stats threads: %d workers, holding the 7 connections of this test: %s" % (
        len([k for k in t if k.endswith(":conns")]),
        sum(int(v) for k, v in t.items() if k.endswith(":conns")) >= 7))
    c.request(b"set newkey 0 0 1", b"x")
    newcas = mcproto.values(c.request(b"gets newkey"))["newkey"][2]
    print("  CAS counter carried over:", newcas > max(cas.values()))
    for ch in checkers:
        print("  checker %d: %s" % (ch.n, ch.c.request(b"get ctr%d" % ch.n) ==
                                     b"VALUE ctr%d 0 %d\r\n%d\r\nEND\r\n" % (ch.n, len(b"%d" % ch.ctr), ch.ctr)))


def history(ctl, sock):
    st = subprocess.run([ctl, "--control", sock, "status"], capture_output=True, text=True).stdout
    for line in st.splitlines():
        if line.startswith("  #"):
            print("history:", line.strip())


def serve(run, mcd, sock, work, body):
    """mcd-1.so under mvedsua-run (RUN) with WORKERS workers and control
    socket SOCK; body(port); then the server's exit status."""
    server = mcproto.Server(os.path.join(mcd, "mcd-1.so"), ["-t", str(WORKERS), "-m", "1024"], run=run,
                            control=sock, log=os.path.join(work, "mcd.log"))
    try:
        body(server.port)
    finally:
        status = server.stop()
    print("mcd exit status", status)
    if status != 0:
        print(server.stderr().decode(errors="replace"))
