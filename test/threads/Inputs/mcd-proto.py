#!/usr/bin/env python3
"""mcd-proto.py [--run MVEDSUA_RUN] [--threads N] [--memcslap N] PROGRAM VERSION

Starts PROGRAM (an mcd native executable, or a version .so under mvedsua-run)
on a free port with N worker threads and checks the exact reply to every
command of memcached's text protocol that mcd VERSION implements: storage
commands, retrieval, cas, delete, incr/decr, expiry, flush_all, noreply,
every error string, pipelined and split requests, long multi-gets, values
shared across connections served by different workers; then `memcslap` set,
get and mget runs (N requests per thread, 4 threads) and a clean exit on
SIGTERM. Prints one line per mismatch and a summary; exit 1 on any mismatch.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import mcproto  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--run", default=os.environ.get("MVEDSUA_RUN", "mvedsua-run"))
ap.add_argument("--threads", type=int, default=4)
ap.add_argument("--memcslap", type=int, default=2000)
ap.add_argument("program")
ap.add_argument("version", type=int)
args = ap.parse_args()
V = args.version

failures = []
checks = 0


def check(name, got, want):
    global checks
    checks += 1
    ok = want.fullmatch(got) is not None if isinstance(want, re.Pattern) else got == want
    if not ok:
        failures.append(name)
        print("mcd-proto: FAIL: %s: expected %r, got %r" % (name, want if not isinstance(want, re.Pattern) else want.pattern, got))


def rx(s):
    return re.compile(s, re.S)


server = mcproto.Server(args.program, ["-t", str(args.threads)], run=args.run)
port = server.port
try:
    c = mcproto.Client(port)
    R = c.request
    check("version", R(b"version"), b"VERSION 1.6.0-mcd%d\r\n" % V)

    # storage and retrieval
    check("set", R(b"set k1 0 0 5", b"hello"), b"STORED\r\n")
    check("get", R(b"get k1"), b"VALUE k1 0 5\r\nhello\r\nEND\r\n")
    check("get missing", R(b"get nothere"), b"END\r\n")
    check("get repeated", R(b"get k1 nothere k1"),
          b"VALUE k1 0 5\r\nhello\r\nVALUE k1 0 5\r\nhello\r\nEND\r\n")
    check("set flags", R(b"set k2 42 0 3", b"abc"), b"STORED\r\n")
    check("get flags", R(b"get k2"), b"VALUE k2 42 3\r\nabc\r\nEND\r\n")
    check("set max flags", R(b"set k2f 4294967295 0 1", b"x"), b"STORED\r\n")
    check("get max flags", R(b"get k2f"), b"VALUE k2f 4294967295 1\r\nx\r\nEND\r\n")
    check("set empty", R(b"set e 0 0 0", b""), b"STORED\r\n")
    check("get empty", R(b"get e"), b"VALUE e 0 0\r\n\r\nEND\r\n")
    check("binary value", R(b"set bin 0 0 6", b"a\r\nb\x00c"), b"STORED\r\n")
    check("get binary", R(b"get bin"), b"VALUE bin 0 6\r\na\r\nb\x00c\r\nEND\r\n")
    check("add existing", R(b"add k1 0 0 1", b"x"), b"NOT_STORED\r\n")
    check("add new", R(b"add k3 0 0 3", b"xyz"), b"STORED\r\n")
    check("replace missing", R(b"replace k4 0 0 1", b"x"), b"NOT_STORED\r\n")
    check("replace", R(b"replace k1 0 0 5", b"world"), b"STORED\r\n")
    check("append", R(b"append k1 0 0 1", b"!"), b"STORED\r\n")
    check("prepend", R(b"prepend k1 0 0 2", b">>"), b"STORED\r\n")
    check("get appended", R(b"get k1"), b"VALUE k1 0 8\r\n>>world!\r\nEND\r\n")
    check("append missing", R(b"append k4 0 0 1", b"x"), b"NOT_STORED\r\n")
    check("prepend missing", R(b"prepend k4 0 0 1", b"x"), b"NOT_STORED\r\n")
    R(b"set k5 7 0 1", b"x")
    check("append keeps flags", (R(b"append k5 99 0 1", b"y"), R(b"get k5")),
          (b"STORED\r\n", b"VALUE k5 7 2\r\nxy\r\nEND\r\n"))

    # cas
    g = R(b"gets k1")
    check("gets", g, rx(rb"VALUE k1 0 8 (\d+)\r\n>>world!\r\nEND\r\n"))
    cas = mcproto.values(g).get("k1", (0, b"", 0))[2]
    check("cas", R(b"cas k1 0 0 3 %d" % cas, b"new"), b"STORED\r\n")
    check("cas stale", R(b"cas k1 0 0 3 %d" % cas, b"old"), b"EXISTS\r\n")
    check("cas missing", R(b"cas k4 0 0 1 1", b"x"), b"NOT_FOUND\r\n")
    check("get after cas", R(b"get k1"), b"VALUE k1 0 3\r\nnew\r\nEND\r\n")
    g2 = mcproto.values(R(b"gets k1 k2"))
    check("gets multi", sorted(g2), ["k1", "k2"])
    check("cas unique changes", g2.get("k1", (0, b"", cas))[2] != cas, True)
    c.send(b"cas k1 0 0 1 1 noreply\r\nz\r\n")
    check("cas noreply then get", R(b"get k1"), b"VALUE k1 0 3\r\nnew\r\nEND\r\n")

    # delete
    check("delete", R(b"delete k1"), b"DELETED\r\n")
    check("delete missing", R(b"delete k1"), b"NOT_FOUND\r\n")
    check("delete 0", R(b"delete k2 0"), b"DELETED\r\n")
    check("delete with time", R(b"delete k3 5"),
          b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n")
    check("get deleted", R(b"get k1 k2"), b"END\r\n")

    # incr / decr
    R(b"set n 5 0 2", b"10")
    check("incr", R(b"incr n 5"), b"15\r\n")
    check("decr", R(b"decr n 3"), b"12\r\n")
    check("decr floor", R(b"decr n 100"), b"0\r\n")
    check("incr max", R(b"incr n 18446744073709551615"), b"18446744073709551615\r\n")
    check("incr wraps", R(b"incr n 2"), b"1\r\n")
    R(b"set d 3 0 3", b"100")
    check("decr shrinks", (R(b"decr d 1"), R(b"get d")), (b"99\r\n", b"VALUE d 3 2\r\n99\r\nEND\r\n"))
    check("incr missing", R(b"incr nothere 1"), b"NOT_FOUND\r\n")
    check("decr missing", R(b"decr nothere 1"), b"NOT_FOUND\r\n")
    check("incr non-numeric", R(b"incr k3 1"),
          b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
    check("incr bad delta", R(b"incr n abc"), b"CLIENT_ERROR invalid numeric delta argument\r\n")
    check("incr negative delta", R(b"incr n -1"), b"CLIENT_ERROR invalid numeric delta argument\r\n")
    check("incr arity", R(b"incr n"), b"ERROR\r\n")

    # noreply
    c.send(b"set q 1 0 1 noreply\r\nx\r\nadd q 0 0 1 noreply\r\ny\r\nincr n 1 noreply\r\n"
           b"append q 0 0 1 noreply\r\nz\r\n")
    check("noreply", R(b"get q n"), b"VALUE q 1 2\r\nxz\r\nVALUE n 5 1\r\n2\r\nEND\r\n")
    c.send(b"delete q noreply\r\n")
    check("delete noreply", R(b"get q"), b"END\r\n")

    # errors
    check("unknown", R(b"bogus"), b"ERROR\r\n")
    check("empty line", R(b""), b"ERROR\r\n")
    check("get no key", R(b"get"), b"ERROR\r\n")
    check("set arity", R(b"set k 0 0"), b"ERROR\r\n")
    check("set too many", R(b"set k 0 0 1 noreply extra"), b"ERROR\r\n")
    c.send(b"set k abc 0 1\r\nx\r\n")
    check("bad flags", (c.reply(), c.reply()), (b"CLIENT_ERROR bad command line format\r\n", b"ERROR\r\n"))
    check("negative length", R(b"set k 0 0 -1"), b"CLIENT_ERROR bad command line format\r\n")
    long_key = b"x" * 251
    check("key too long get", R(b"get " + long_key), b"CLIENT_ERROR bad command line format\r\n")
    c.send(b"set " + long_key + b" 0 0 1\r\nx\r\n")
    check("key too long set", (c.reply(), c.reply()), (b"CLIENT_ERROR bad command line format\r\n", b"ERROR\r\n"))
    check("key of 250", R(b"set " + b"y" * 250 + b" 0 0 1", b"v"), b"STORED\r\n")
    c.send(b"set k 0 0 3\r\nabcde\r\n")
    check("bad data chunk", (c.reply(), c.reply()), (b"CLIENT_ERROR bad data chunk\r\n", b"ERROR\r\n"))
    check("too large", R(b"set big 0 0 1048577", b"b" * 1048577), b"SERVER_ERROR object too large for cache\r\n")
    check("largest", R(b"set big 0 0 1048576", b"b" * 1048576), b"STORED\r\n")
    check("get largest", R(b"get big"), b"VALUE big 0 1048576\r\n" + b"b" * 1048576 + b"\r\nEND\r\n")
    check("too large drops the old value", (R(b"set big 0 0 2000000", b"c" * 2000000), R(b"get big")),
          (b"SERVER_ERROR object too large for cache\r\n", b"END\r\n"))
    check("verbosity", R(b"verbosity 1"), b"OK\r\n")

    # expiry: negative, absolute in the past, absolute in the future, 1 s
    now = int(time.time())
    check("negative exptime", (R(b"set x1 0 -1 1", b"a"), R(b"get x1")), (b"STORED\r\n", b"END\r\n"))
    check("absolute past", (R(b"set x2 0 %d 1" % (60 * 60 * 24 * 30 + 1), b"a"), R(b"get x2")),
          (b"STORED\r\n", b"END\r\n"))
    check("absolute future", (R(b"set x3 0 %d 1" % (now + 3600), b"a"), R(b"get x3")),
          (b"STORED\r\n", b"VALUE x3 0 1\r\na\r\nEND\r\n"))
    check("relative", R(b"set x4 0 1 1", b"a"), b"STORED\r\n")
    if V >= 2:
        check("touch to 1 s", (R(b"set x5 0 0 1", b"a"), R(b"touch x5 1")), (b"STORED\r\n", b"TOUCHED\r\n"))
    time.sleep(2.1)
    check("expired", R(b"get x4 x3"), b"VALUE x3 0 1\r\na\r\nEND\r\n")
    if V >= 2:
        check("touched expired", R(b"get x5"), b"END\r\n")

    if V >= 2:
        # touch, gat, gats (version 2)
        R(b"set t1 9 0 2", b"tv")
        check("touch", R(b"touch t1 0"), b"TOUCHED\r\n")
        check("touch missing", R(b"touch nothere 10"), b"NOT_FOUND\r\n")
        check("touch bad exptime", R(b"touch t1 abc"), b"CLIENT_ERROR invalid exptime argument\r\n")
        check("touch arity", R(b"touch t1"), b"ERROR\r\n")
        c.send(b"touch t1 100 noreply\r\n")
        check("gat", R(b"gat 3600 t1 nothere"), b"VALUE t1 9 2\r\ntv\r\nEND\r\n")
        check("gats", R(b"gats 0 t1"), rx(rb"VALUE t1 9 2 \d+\r\ntv\r\nEND\r\n"))
        check("gat expires", (R(b"gat -1 t1"), R(b"get t1")), (b"VALUE t1 9 2\r\ntv\r\nEND\r\n", b"END\r\n"))
        check("gat bad exptime", R(b"gat x t1"), b"CLIENT_ERROR invalid exptime argument\r\n")
        check("gat no key", R(b"gat 10"), b"ERROR\r\n")
        st = c.stats()
        check("touch stats", (st.get("cmd_touch"), st.get("touch_hits"), st.get("touch_misses")),
              ("8", "6", "2"))

    # flush_all
    check("flush_all", R(b"flush_all"), b"OK\r\n")
    check("flushed", R(b"get k3 n d"), b"END\r\n")
    R(b"set f1 0 0 1", b"a")
    check("flush_all delayed", (R(b"flush_all 60"), R(b"get f1")), (b"OK\r\n", b"VALUE f1 0 1\r\na\r\nEND\r\n"))
    check("flush_all bad", R(b"flush_all soon"), b"CLIENT_ERROR bad command line format\r\n")
    c.send(b"flush_all noreply\r\n")
    check("flush_all noreply", R(b"get f1"), b"END\r\n")

    # pipelined and split requests
    c.send(b"".join(b"set p%d 0 0 %d\r\n%s\r\n" % (i, len(str(i)), str(i).encode()) for i in range(200))
           + b"get " + b" ".join(b"p%d" % i for i in range(200)) + b"\r\n")
    got = [c.reply() for _ in range(200)]
    check("pipelined sets", got, [b"STORED\r\n"] * 200)
    v = mcproto.values(c.reply(retrieval=True))
    check("pipelined get", [v.get("p%d" % i, (0, b""))[1] for i in range(200)], [str(i).encode() for i in range(200)])
    for part in (b"se", b"t split 0 0 10\r", b"\n01234", b"56789\r", b"\n"):
        c.send(part)
        time.sleep(0.05)
    check("split request", c.reply(), b"STORED\r\n")
    check("get split", R(b"get split"), b"VALUE split 0 10\r\n0123456789\r\nEND\r\n")

    # a multi-get of 5000 keys in one line (longer than any other command line)
    keys = [b"mk%05d" % i for i in range(5000)]
    c.send(b"".join(b"set %s 0 0 5 noreply\r\n%s\r\n" % (k, k[2:]) for k in keys))
    v = mcproto.values(R(b"get " + b" ".join(keys)))
    check("long multi-get", sum(1 for k in keys if v.get(k.decode(), (0, b""))[1] == k[2:]), 5000)

    # the table is shared: connections served by different workers
    conns = [mcproto.Client(port) for _ in range(2 * args.threads)]
    for i, cc in enumerate(conns):
        cc.request(b"set shared%d 0 0 %d" % (i, len(b"v%d" % i)), b"v%d" % i)
    bad = 0
    for i, cc in enumerate(conns):
        j = (i + 1) % len(conns)
        if cc.request(b"get shared%d" % j) != b"VALUE shared%d 0 %d\r\nv%d\r\nEND\r\n" % (j, len(b"v%d" % j), j):
            bad += 1
    check("shared across workers", bad, 0)
    R(b"set ctr 0 0 1", b"0")
    for _ in range(50):
        for cc in conns:
            cc.send(b"incr ctr 1\r\n")
    for cc in conns:
        for _ in range(50):
            cc.reply()
    check("incr from every connection", R(b"get ctr"), b"VALUE ctr 0 3\r\n%d\r\nEND\r\n" % (50 * len(conns)))

    # stats
    st = c.stats()
    check("stats threads", st.get("threads"), str(args.threads))
    check("stats version", st.get("version"), "1.6.0-mcd%d" % V)
    check("stats connections", int(st.get("curr_connections", 0)), 1 + len(conns))
    check("stats items", int(st.get("curr_items", 0)), 200 + 1 + 5000 + len(conns) + 1)
    if V >= 2:
        check("stats items", R(b"stats items"),
              rx(rb"STAT items:1:number %d\r\nSTAT items:1:age \d+\r\nEND\r\n" % int(st.get("curr_items", 0))))
    if V >= 3:
        t = c.stats(b"threads")
        check("stats threads lines", sorted(k for k in t if k.endswith(":conns")),
              sorted("thread:%d:conns" % i for i in range(args.threads)))
        check("stats threads conns", sum(int(t.get("thread:%d:conns" % i, 0)) for i in range(args.threads)), 1 + len(conns))
    else:
        check("stats threads (none)", R(b"stats threads"), b"ERROR\r\n")
    check("stats reset", R(b"stats reset"), b"RESET\r\n")
    check("stats after reset", c.stats().get("cmd_get"), "0")
    for cc in conns:
        cc.close()

    # quit, and a line that is too long
    q = mcproto.Client(port)
    q.send(b"quit\r\n")
    check("quit closes", q.closed(), True)
    q = mcproto.Client(port)
    q.send(b"x" * 10000)
    check("line too long", (q.line(), q.closed()), (b"CLIENT_ERROR line too long\r\n", True))
    check("still serving", R(b"version"), b"VERSION 1.6.0-mcd%d\r\n" % V)
    c.close()

    # eviction: a 1 MB cache keeps taking values, evicting older ones
    ev = mcproto.Server(args.program, ["-t", "1", "-m", "1"], run=args.run)
    try:
        e = mcproto.Client(ev.port)
        e.send(b"".join(b"set ev%d 0 0 1000 noreply\r\n%s\r\n" % (i, b"e" * 1000) for i in range(3000)))
        check("set evicting", e.request(b"set evlast 0 0 3", b"abc"), b"STORED\r\n")
        st = e.stats()
        check("evictions", (int(st.get("evictions", 0)) > 1000, int(st.get("bytes", 1 << 30)) <= 1 << 20), (True, True))
        check("newest kept", e.request(b"get evlast"), b"VALUE evlast 0 3\r\nabc\r\nEND\r\n")
        e.close()
    finally:
        check("eviction server exit", ev.stop(), 0)

    # memcslap: set, get, mget
    if shutil.which("memcslap"):
        for test in ("set", "get", "mget"):
            r = subprocess.run(["memcslap", "--servers=127.0.0.1:%d" % port, "--concurrency=4",
                                "--execute-number=%d" % args.memcslap, "--test=" + test],
                               capture_output=True, text=True, timeout=120)
            errs = [l for l in (r.stdout + r.stderr).splitlines() if "ail" in l or "rror" in l]
            check("memcslap " + test, (r.returncode, errs), (0, []))
        st = mcproto.Client(port).stats()
        check("memcslap reached", int(st.get("cmd_set", 0)) >= 4 * args.memcslap, True)
except Exception as e:  # a broken reply or connection: reported, the server still stopped
    check("no exception", repr(e), None)
finally:
    status = server.stop()
log = server.stderr().decode(errors="replace")
check("exit status", status, 0)
check("shutdown message", "mcd: shutting down" in log, True)
print("mcd-proto: %s -t %d: %d checks, %d failed" % (os.path.basename(args.program), args.threads, checks, len(failures)))
if failures:
    print(log, end="")
sys.exit(1 if failures else 0)
