#!/usr/bin/env python3
"""Runs the first redis version built by ports/redis/build.sh under
mvedsua-run (no persistence), fills it, and applies every later version in
place, one after the other, under load: redis-benchmark looping in db 1,
clients counting their own INCRs in db 2, and connections left open in the
middle of a MULTI, a SUBSCRIBE and a blocking BLPOP. Then checks that no
client saw an error, that db 0 (strings, hashes, sets, sorted sets, lists,
a stream, keys with a TTL) is exactly what it was, that every open
connection is served by the last version, and that the fixes of the last
version are the ones answering.

With --mode mve each update is a multi-version one instead: `mvedsua-ctl
update NEXT.so` (the follower updates, its three relaunched bio threads and
its main thread replay their lanes until caught up), a second of following
under the load, then `promote` (the old version then follows the new one, the updated-leader
stage) and `finish` ("finished: ... runs alone"). With --bug, before the update to the version
the bug was made from, the version with the injected bug (bugs.list) is
tried first: a FUNCTION LIST whose reply it gets wrong must make the
follower diverge, the report must name the command, the update must be
rolled back and the clients must not notice.

With --persistence rdb, aof or both the server saves while it is updated:
rdb sets a save point (`save 1 1000`: a BGSAVE child about every second
under the load) and asks a BGSAVE before each update and another while the
follower follows; aof turns on the append-only file (`appendfsync
everysec`, so the bio thread fsyncs it, and automatic rewrites from 8 MB)
and asks a BGREWRITEAOF at the same two moments. Then checks that every
save and rewrite succeeded, and that the files are the data: once the load
has stopped, a last BGSAVE (and rewrite), and the last version started
afresh from a copy of the RDB file and from a copy of the AOF directory
has the running server's DEBUG DIGEST.

  check-updates.py MVEDSUA_RUN MVEDSUA_CTL PORT_DIR WORK_DIR PORT [--keys N]
                   [--mode inplace|mve] [--bug] [--persistence none|rdb|aof|both]

Prints one line per check (for FileCheck) and exits 1 if any failed."""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    """One connection; replies parsed in full (nested arrays as lists,
    errors as RespError, status replies as str)."""

    def __init__(self, port, timeout=60):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _fill(self):
        data = self.s.recv(1 << 16)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def raw_line(self):
        return self.line()

    def reply(self):
        line = self.line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad reply line %r" % line)

    def ask(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()

    def pipeline(self, commands):
        self.s.sendall(b"".join(resp(*c) for c in commands))
        return [self.reply() for _ in commands]


class RespError(str):
    pass


failures = []


def check(label, ok, detail=""):
    print("%s: %s%s" % (label, "ok" if ok else "FAILED", (" (%s)" % detail) if detail else ""))
    sys.stdout.flush()
    if not ok:
        failures.append(label)


def db0_digest(c):
    """Every key of db 0 with its type, DEBUG DIGEST-VALUE and whether it has
    a TTL, sorted: an md5 of the whole key space and the number of keys."""
    c.ask("SELECT", 0)
    keys, cursor = [], b"0"
    while True:
        cursor, batch = c.ask("SCAN", cursor, "COUNT", 1000)
        keys += batch
        if cursor == b"0":
            break
    keys.sort()
    h = hashlib.md5()
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        cmds = []
        for k in chunk:
            cmds += [("TYPE", k), ("DEBUG", "DIGEST-VALUE", k), ("PTTL", k)]
        r = c.pipeline(cmds)
        for j, k in enumerate(chunk):
            typ, dig, ttl = r[3 * j], r[3 * j + 1], r[3 * j + 2]
            h.update(k + b"\0" + typ.encode() + b"\0" + str(dig[0]).encode() + b"\0" + (b"ttl" if ttl > 0 else b"-") + b"\n")
    return len(keys), h.hexdigest()[:16]


def fill(c, nkeys):
    c.ask("SELECT", 0)
    c.ask("DEBUG", "POPULATE", nkeys, "key", 64)
    cmds = []
    # Hashes, sets and sorted sets big enough to be hash tables (their dicts'
    # types are the version's static data), and small ones (listpacks).
    for n, big in (("big", 600), ("small", 10)):
        for i in range(big):
            cmds.append(("HSET", "hash:%s" % n, "f%d" % i, "v%d" % i))
            cmds.append(("SADD", "set:%s" % n, "m%d" % i))
            cmds.append(("ZADD", "zset:%s" % n, i, "m%d" % i))
            cmds.append(("RPUSH", "list:%s" % n, "e%d" % i))
    for i in range(100):
        cmds.append(("XADD", "stream", "*", "n", i))
        cmds.append(("SET", "ttl:%d" % i, "v%d" % i, "EX", 100000))
    for r in c.pipeline(cmds):
        assert not isinstance(r, RespError), r
    c.ask("XGROUP", "CREATE", "stream", "g1", "0")
    c.ask("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 10, "STREAMS", "stream", ">")


def counter_client(port, stop, results, idx):
    """INCRs counter in db 2 until told to stop; counts its successes."""
    ok = errors = 0
    try:
        c = Conn(port)
        c.ask("SELECT", 2)
        while not stop.is_set():
            r = c.pipeline([("INCR", "counter")] * 16)
            for x in r:
                if isinstance(x, int):
                    ok += 1
                else:
                    errors += 1
    except Exception as e:  # a dropped connection is an error
        errors += 1
        results.append(("exception", idx, repr(e)))
    results.append(("done", idx, ok, errors))


def info(c, section):
    return dict(l.split(":", 1) for l in c.ask("INFO", section).decode().split("\r\n") if ":" in l)


PERSISTENCE = {
    "none": ["--save", "", "--appendonly", "no"],
    "rdb": ["--save", "1 1000", "--appendonly", "no"],
    "aof": ["--save", "", "--appendonly", "yes"],
    "both": ["--save", "1 1000", "--appendonly", "yes"],
}
AOF = ["--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "100",
       "--auto-aof-rewrite-min-size", "8mb"]


def ask_saves(c, persistence, asked):
    """A BGSAVE and/or a BGREWRITEAOF, now: started, or scheduled after the
    child that runs (one child at a time); counted in asked[what]."""
    cmds = []
    if persistence in ("rdb", "both"):
        cmds.append(("BGSAVE", "SCHEDULE"))
    if persistence in ("aof", "both"):
        cmds.append(("BGREWRITEAOF",))
    for cmd in cmds:
        r = c.ask(*cmd)
        # A rewrite asked while one runs is the only refusal that is fine.
        ok = not isinstance(r, RespError) or "already in progress" in r
        asked.setdefault(cmd[0], []).append(ok)
        if not ok:
            print("%s: %s" % (cmd[0], r))


def wait_no_child(c, seconds=120):
    """Until no save or rewrite runs nor is scheduled."""
    end = time.time() + seconds
    while time.time() < end:
        i = info(c, "persistence")
        if all(i.get(k, "0") == "0" for k in ("rdb_bgsave_in_progress", "aof_rewrite_in_progress",
                                                "aof_rewrite_scheduled")):
            return True
        time.sleep(0.1)
    return False


def free_port():
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "lib")
    return int(subprocess.check_output([sys.executable, os.path.join(lib, "free-port.py")]))


def restart_from(a, last, what, files, persist_args):
    """The last version, started afresh from a copy of FILES (the RDB file or
    the AOF directory) in a directory of its own: its DEBUG DIGEST."""
    d = os.path.join(a.work, "restart-" + what)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for f in files:
        src = os.path.join(a.work, f)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(d, f))
    port = free_port()
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen(
        [a.run, os.path.join(a.portdir, last + ".so"), "--port", str(port), "--bind", "127.0.0.1",
         "--enable-debug-command", "local", "--dir", d, "--logfile", ""] + persist_args,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(600):
            try:
                c = Conn(port)
                if c.ask("PING") == "PONG" and info(c, "persistence").get("loading") == "0":
                    return c.ask("DEBUG", "DIGEST")
            except (OSError, EOFError):
                pass
            if p.poll() is not None:
                return "exited with %s" % p.returncode
            time.sleep(0.1)
        return "did not load"
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()


def check_persisted(a, c, versions, forks_before, asked):
    """The saves and rewrites of the updates succeeded, and the files hold
    the data: restarted from them, the last version has this digest."""
    wait_no_child(c)
    i, s = info(c, "persistence"), info(c, "stats")
    rdb = a.persistence in ("rdb", "both")
    aof = a.persistence in ("aof", "both")
    at_updates = asked.pop("children at updates", 0)
    ok = all(asked.get(k) and all(asked[k]) for k in (["BGSAVE"] if rdb else []) + (["BGREWRITEAOF"] if aof else []))
    ok = ok and (not rdb or i["rdb_last_bgsave_status"] == "ok") and \
        (not aof or (i["aof_last_bgrewrite_status"] == "ok" and i["aof_last_write_status"] == "ok"))
    print("persistence %s: %d forks during the updates, %s BGSAVEs, %s AOF rewrites; "
          "%d of %d updates asked for while a child saved" % (
              a.persistence, int(s["total_forks"]) - forks_before, i["rdb_saves"], i["aof_rewrites"],
              at_updates, len(versions) - 1))
    check("persistence: every save and rewrite asked for or triggered succeeded", ok,
          "" if ok else "asked %r; %s" % (asked, {k: v for k, v in i.items() if "status" in k}))
    live = c.ask("DEBUG", "DIGEST")
    if rdb:
        saves = int(i["rdb_saves"])
        c.ask("BGSAVE", "SCHEDULE")
        end = time.time() + 120
        while int(info(c, "persistence")["rdb_saves"]) == saves and time.time() < end:
            time.sleep(0.1)
        wait_no_child(c)
        got = restart_from(a, versions[-1], "rdb", ["dump.rdb"], PERSISTENCE["none"])
        check("RDB file: the last version restarted from it has the digest %s" % live, got == live,
              "" if got == live else repr(got))
    if aof:
        c.ask("BGREWRITEAOF")
        wait_no_child(c)
        time.sleep(1.5)  # appendfsync everysec: what is written is in the files already
        d = info(c, "persistence")
        got = restart_from(a, versions[-1], "aof", ["appendonlydir"], ["--save", "", "--appendonly", "yes"])
        ok = got == live and d["aof_last_write_status"] == "ok"
        check("AOF: the last version restarted from it has the digest %s" % live, ok,
              "" if ok else "%r, aof_last_write_status %s" % (got, d["aof_last_write_status"]))


def try_bug(a, ctl, status, c, bench, name):
    """A multi-version update to NAME, whose FUNCTION LIST answers an
    unknown argument with its CR and LF (CVE-2025-67733 reverted): the
    follower must diverge on that command's reply, the update roll back,
    and the client get the running version's (fixed) answer."""
    so = os.path.join(a.portdir, name + ".so")
    r = ctl("update", so)
    caught = r.returncode == 0 and r.stdout.startswith("caught up")
    check("update to %s (injected bug): caught up" % name, caught, (r.stdout + r.stderr).strip())
    time.sleep(0.5)
    c.ask("SELECT", 0)
    fd = int(dict(kv.split("=", 1) for kv in c.ask("CLIENT", "INFO").decode().split())["fd"])
    c.s.sendall(resp("FUNCTION", "LIST", "X\r\n+INJECTED"))
    reply = c.line()
    check("the client gets the running version's answer", reply == b"-ERR Unknown argument X  +INJECTED",
          repr(reply))
    st = status()
    for _ in range(100):
        if st["last_update"]["outcome"] != "in-progress":
            break
        time.sleep(0.1)
        st = status()
    reason = st["last_update"].get("reason") or ""
    with open(os.path.join(a.work, "bug-report.txt"), "w") as f:
        f.write(reason)
    lines = [l.strip() for l in reason.splitlines()]
    div = [l for l in lines if "divergence at record" in l]
    print("injected bug: %s: %s" % (st["last_update"]["outcome"], " / ".join(lines[:4])))
    # The report names the call (a write on the client's descriptor) and the
    # bytes that differ: the reply to FUNCTION LIST, with and without the fix.
    on_reply = any(l.startswith("leader:   write(%d, " % fd) for l in lines) and \
        'leader "  +INJECTED' in reason and 'follower "\\x0d\\x0a+INJECTED' in reason
    check("injected bug: rolled back on a divergence in the reply to FUNCTION LIST (fd %d)" % fd,
          st["last_update"]["outcome"] == "rolled-back" and bool(div) and on_reply
          and st["stage"] == "single-leader" and not st.get("follower_pid"))
    check("injected bug: the server serves on", c.ask("PING") == "PONG" and bench.poll() is None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("ctl")
    ap.add_argument("portdir")
    ap.add_argument("work")
    ap.add_argument("port", type=int)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--mode", choices=("inplace", "mve"), default="inplace")
    ap.add_argument("--bug", action="store_true")
    ap.add_argument("--persistence", choices=sorted(PERSISTENCE), default="none")
    a = ap.parse_args()

    versions = open(os.path.join(a.portdir, "versions.list")).read().split()
    # NAME PREVIOUS: tried just before the update from PREVIOUS.
    bugs = {}
    if a.bug:
        for line in open(os.path.join(a.portdir, "bugs.list")):
            name, prev = line.split()
            bugs[prev] = name
    os.makedirs(a.work, exist_ok=True)
    sock = os.path.join(a.work, "ctl.sock")
    log = open(os.path.join(a.work, "server.log"), "w")
    first = os.path.join(a.portdir, versions[0] + ".so")
    server = subprocess.Popen(
        [a.run, "--control", sock, first, "--port", str(a.port), "--bind", "127.0.0.1",
         "--enable-debug-command", "local", "--dir", a.work, "--logfile", ""] +
        PERSISTENCE[a.persistence] + AOF,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    bench = None
    try:
        for _ in range(200):
            try:
                if Conn(a.port).ask("PING") == "PONG":
                    break
            except OSError:
                time.sleep(0.05)
        c = Conn(a.port)
        fill(c, a.keys)
        sha = c.ask("SCRIPT", "LOAD", "return redis.call('get', KEYS[1])").decode()
        c.ask("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('myget', function(k, a) return redis.call('get', k[1]) end)")
        c.ask("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        c.ask("ACL", "SETUSER", "alice", "on", ">secret", "~key:*", "+get")
        before = db0_digest(c)
        print("versions: %d, from %s to %s" % (len(versions), versions[0], versions[-1]))
        print("filled: %d keys in db 0" % before[0])
        c.s.sendall(resp("FUNCTION", "LIST", "X\r\n+INJECTED"))
        old_reply = c.line()
        extra = c.line() if not old_reply.endswith(b"INJECTED") else b""
        print("first version: FUNCTION LIST with CRLF answers %r%s" % (old_reply, " then %r" % extra if extra else ""))

        # Connections left in the middle of something.
        idle = [Conn(a.port) for _ in range(8)]
        for i, x in enumerate(idle):
            assert x.ask("SELECT", 5) == "OK" and x.ask("SET", "idle:%d" % i, i) == "OK"
        multi = Conn(a.port)
        multi.ask("SELECT", 3)
        multi.ask("MULTI")
        multi.ask("SET", "in-multi", "yes")
        multi.ask("INCR", "in-multi-count")
        sub = Conn(a.port)
        sub.ask("SUBSCRIBE", "news")
        blocked = Conn(a.port)
        blocked.ask("SELECT", 4)
        blocked.s.sendall(resp("BLPOP", "wakeup", 0))

        stop = threading.Event()
        results = []
        counters = [threading.Thread(target=counter_client, args=(a.port, stop, results, i)) for i in range(4)]
        for t in counters:
            t.start()
        bench_out = open(os.path.join(a.work, "benchmark.out"), "w")
        bench = subprocess.Popen(
            ["redis-benchmark", "-p", str(a.port), "--dbnum", "1", "-c", "20", "-r", "100000",
             "-n", "50000", "-l", "-q", "-t", "set,get,incr,lpush,rpop,sadd,hset,zadd,mset"],
            stdout=bench_out, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(1.0)

        def ctl(*args, timeout=300):
            return subprocess.run([a.ctl, "--control", sock] + list(args),
                                  capture_output=True, text=True, timeout=timeout)

        def status():
            return json.loads(ctl("status", "--json").stdout)

        pauses = []
        prev = versions[0]
        forks_before, asked = int(info(c, "stats")["total_forks"]), {}
        for v in versions[1:]:
            so = os.path.join(a.portdir, v + ".so")
            ask_saves(c, a.persistence, asked)  # a child runs at the update
            if a.persistence != "none":
                i = info(c, "persistence")
                asked["children at updates"] = asked.get("children at updates", 0) + (
                    i["rdb_bgsave_in_progress"] == "1" or i["aof_rewrite_in_progress"] == "1")
            if a.mode == "inplace":
                r = ctl("update", "--inplace", so, timeout=120)
                ok = r.returncode == 0 and r.stdout.startswith("finished:")
                pause = r.stdout.split("pause ", 1)[1].split(",", 1)[0] if "pause " in r.stdout else "?"
                pauses.append(pause)
                check("update to %s" % v, ok and c.ask("PING") == "PONG" and bench.poll() is None,
                      r.stdout.strip() if not ok else "")
                time.sleep(0.5)
                prev = v
                continue
            if prev in bugs:
                try_bug(a, ctl, status, c, bench, bugs[prev])
            t0 = time.monotonic()
            r = ctl("update", so)
            t1 = time.monotonic()
            caught = r.returncode == 0 and r.stdout.startswith("caught up")
            st = status() if caught else {}
            following = st.get("stage") == "outdated-leader" and bool(st.get("follower_pid"))
            if caught:
                ask_saves(c, a.persistence, asked)  # forked by the leader, replayed
            time.sleep(1.0)  # the follower follows the load
            st2 = status() if caught else {}
            still = st2.get("stage") == "outdated-leader" and bool(st2.get("follower_pid"))
            t2 = time.monotonic()
            p = ctl("promote") if caught else r
            t3 = time.monotonic()
            promoted = p.returncode == 0 and p.stdout.startswith("promoted:")
            if promoted:  # the old version follows the new one; then it ends
                p = ctl("finish")
                promoted = p.returncode == 0 and p.stdout.startswith("finished:") and "runs alone" in p.stdout
            pauses.append("%.1f s to catch up, promoted in %.0f ms" % (t1 - t0, 1000 * (t3 - t2)))
            detail = "" if caught and following and still and promoted else \
                "update: %r; stage %r then %r; promote: %r; reason %r" % (
                    (r.stdout + r.stderr).strip(), st.get("stage"), st2.get("stage"),
                    (p.stdout + p.stderr).strip(),
                    (status().get("last_update") or {}).get("reason"))
            check("update to %s: caught up, followed, promoted, runs alone" % v,
                  not detail and c.ask("PING") == "PONG" and bench.poll() is None, detail)
            prev = v
        print("pauses: %s" % ", ".join(pauses) if a.mode == "inplace" else
              "updates: %s" % "; ".join(pauses))
        time.sleep(1.0)
        stop.set()
        for t in counters:
            t.join(60)
        bench_alive = bench.poll() is None
        bench.terminate()  # (SIGINT may be ignored when run from a script)
        try:
            bench.wait(30)
        except subprocess.TimeoutExpired:
            bench.kill()
            bench.wait()
        bench_out.close()
        out = open(os.path.join(a.work, "benchmark.out"), errors="replace").read()
        check("redis-benchmark ran through every update", bench_alive)
        errs = [l for l in out.replace("\r", "\n").split("\n") if "rror" in l]
        check("redis-benchmark: no errors", not errs, "; ".join(errs[:3]))

        done = [r for r in results if r[0] == "done"]
        exc = [r for r in results if r[0] == "exception"]
        total = sum(r[2] for r in done)
        nerr = sum(r[3] for r in done)
        c.ask("SELECT", 2)
        counter = int(c.ask("GET", "counter"))
        check("INCR clients: %d acknowledged, counter %d, %d errors" % (total, counter, nerr),
              nerr == 0 and not exc and len(done) == 4 and counter == total and total > 0,
              repr(exc[:2]) if exc else "")

        after = db0_digest(c)
        check("db 0: %d keys, digest %s" % after[:2] if after == before else
              "db 0: %d keys, digest %s (was %d, %s)" % (after + before), after == before)
        if a.persistence != "none":
            check_persisted(a, c, versions, forks_before, asked)

        # The connections opened before the first update.
        check("idle connections", all(x.ask("GET", "idle:%d" % i) == b"%d" % i for i, x in enumerate(idle)))
        check("MULTI across updates", multi.ask("EXEC") == ["OK", 1])
        c.ask("PUBLISH", "news", "hello")
        check("SUBSCRIBE across updates", sub.reply() == [b"message", b"news", b"hello"])
        c.ask("SELECT", 4)
        c.ask("LPUSH", "wakeup", "now")
        check("BLPOP across updates", blocked.reply() == [b"wakeup", b"now"])

        c.ask("SELECT", 0)
        check("EVALSHA of a script loaded before", c.ask("EVALSHA", sha, 1, "key:1") == c.ask("GET", "key:1"))
        check("FCALL of a library loaded before", c.ask("FCALL", "myget", 1, "key:2") == c.ask("GET", "key:2"))
        check("CONFIG kept", c.ask("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"allkeys-lru"])
        r = c.ask("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
        check("CONFIG SET after the updates", r == "OK" and c.ask("CONFIG", "GET", "maxmemory-policy")[1] == b"volatile-lru")
        newcfg = c.ask("CONFIG", "GET", "lua-enable-deprecated-api")
        print("config added by a later version: lua-enable-deprecated-api = %r" % (newcfg,))
        u = Conn(a.port)
        check("ACL user created before", u.ask("AUTH", "alice", "secret") == "OK" and
              u.ask("GET", "key:3") == c.ask("GET", "key:3") and isinstance(u.ask("SET", "key:3", "x"), RespError))
        c.s.sendall(resp("FUNCTION", "LIST", "X\r\n+INJECTED"))
        new_reply = c.line()
        print("last version: FUNCTION LIST with CRLF answers %r" % new_reply)
        # CVE-2025-67733 (deb12u7): CR and LF in error replies become blanks.
        check("the last version's fix answers", new_reply == b"-ERR Unknown argument X  +INJECTED")

        # CVE-2025-46817 (deb12u6) is fixed in the bundled Lua: the new
        # interpreter is the last version's Lua (the first one's crashes).
        r = c.ask("EVAL", "return {unpack({1,2,3}, -2, 2147483647)}", 0)
        ok = isinstance(r, RespError) and "too many results to unpack" in r
        check("the last version's Lua answers", ok, "" if ok else repr(r))

        # Background threads: the new version's lazy free thread frees.
        freed = int(info(c, "memory")["lazyfreed_objects"])
        c.ask("UNLINK", "hash:big")
        for _ in range(100):
            if int(info(c, "memory")["lazyfreed_objects"]) > freed:
                break
            time.sleep(0.05)
        check("UNLINK freed in the background", int(info(c, "memory")["lazyfreed_objects"]) == freed + 1)
        pid = json.loads(subprocess.run([a.ctl, "--control", sock, "status", "--json"],
                                        capture_output=True, text=True).stdout)["leader_pid"]
        tasks = os.listdir("/proc/%d/task" % pid)
        print("threads: %d (main and the 3 background threads)" % len(tasks))
        st = json.loads(subprocess.run([a.ctl, "--control", sock, "status", "--json"],
                                       capture_output=True, text=True).stdout)
        check("status: running %s" % versions[-1], versions[-1] in json.dumps(st.get("version", st)))
    finally:
        if bench and bench.poll() is None:
            bench.kill()
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            rc = server.wait()
        log.close()
    check("exit status %d on SIGTERM" % rc, rc == 0)
    print("failures: %d" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
