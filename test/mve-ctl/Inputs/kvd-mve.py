"""kvd-mve.py RUN CTL KVD_DIR WORK PORT: multi-version updates of kvd under
mvedsua-run, driven with mvedsua-ctl while redis-benchmark (bounded, in the
background) and connected clients use the service:
  (a) kvd-1 -> kvd-1.1: caught up, the status of the outdated-leader stage,
      right replies while following, then rollback on request;
  (b) kvd-1 -> kvd-2-wrongreply (DBSIZE off by one): a DBSIZE after catch-up
      diverges, the follower is rolled back by itself, the client got kvd-1's
      answer;
  (c) kvd-1 -> kvd-2-crash (crashes on TYPE): the follower crashes, rolled
      back with the signal; kvd-1 answered the TYPE.
Prints one fact per line.
"""
import os
import re
import subprocess
import sys
import time

run, ctl, kvd, work, port = sys.argv[1:6]
port = int(port)
sock = os.path.join(work, "kvd.sock")
KEYS = 2000


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from resp import Conn as _Conn, checksum as _checksum, resp  # noqa: E402
from supervised import Control, bench_result as _bench_result  # noqa: E402


def Conn():
    return _Conn(port)


def checksum(c):
    """All keys, pipelined on one connection: missing count and an md5."""
    return _checksum(c, KEYS)


control = Control(ctl, sock)
ctl_run, status, wait_stage = control.ask, control.status, control.wait_for


def cli(*args):
    r = subprocess.run(["redis-cli", "-p", str(port)] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def bench(tests):
    """Bounded: it ends by itself."""
    return subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-n", "40000", "-c", "4", "-r",
         "1000", "-t", tests, "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def bench_result(b):
    return "redis-benchmark: " + _bench_result(b)


def describe(st):
    lu = st["last_update"] or {}
    log = st["log"] or {}
    return ("stage %s, leader %s, follower %s, log %s, last_update %s %s" % (
        st["stage"], "supervisor's child" if st["leader_pid"] else None,
        "pid" if isinstance(st["follower_pid"], int) and
        st["follower_pid"] not in (0, st["leader_pid"]) else st["follower_pid"],
        "with " + " ".join(sorted(log)) if log else None,
        lu.get("mode"), lu.get("outcome")))


def wait_outcome(outcome, c, seconds=20):
    """Until the last update's outcome is `outcome`."""
    return control.wait_for(
        lambda st: st["last_update"]["outcome"] == outcome, seconds)


def clients_ok(clients):
    return " ".join(c.ask("PING").decode() for c in clients)


def main():
    log = open(os.path.join(work, "kvd.log"), "w")
    server = subprocess.Popen([run, "--control", sock,
                               os.path.join(kvd, "kvd-1.so"), "--port", str(port)],
                              stderr=log)
    for _ in range(500):
        if os.path.exists(sock) and "listening" in open(log.name).read():
            break
        time.sleep(0.01)
    fill = subprocess.run(["redis-cli", "-p", str(port), "--pipe"],
                          input="".join("SET key:%d value-%d\r\n" % (i, i * 7)
                                        for i in range(1, KEYS + 1)),
                          capture_output=True, text=True)
    print("filled:", fill.stdout.strip().splitlines()[-1])
    check = Conn()
    clients = [Conn() for _ in range(4)]
    print("before:", checksum(check), describe(status()))
    leader = status()["leader_pid"]

    # (a) kvd-1 -> kvd-1.1, caught up, followed, rolled back on request
    b = bench("set,get,incr")
    time.sleep(0.3)
    print("a update:", ctl_run("update", os.path.join(kvd, "kvd-1.1.so")))
    print("a  during the benchmark:", b.poll() is None)
    st = status()
    print("a status:", describe(st))
    print("a stage fields: leader unchanged %s, follower != leader %s, "
          "backlog_bytes %s, peak >= backlog %s, reason %r" % (
              st["leader_pid"] == leader, st["follower_pid"] != leader,
              type(st["log"]["backlog_bytes"]).__name__,
              st["log"]["peak_backlog_bytes"] >= st["log"]["backlog_bytes"],
              st["last_update"]["reason"]))
    print("a following:", checksum(check), "SET", check.ask("SET", "k-a", "v-a").decode(),
          "GET", check.ask("GET", "k-a").decode(), "clients", clients_ok(clients))
    print("a  " + bench_result(b))
    print("a still following:", describe(status()))
    print("a rollback:", ctl_run("rollback"))
    st = status()
    print("a after rollback:", describe(st), repr(st["last_update"]["reason"]))
    print("a serving:", checksum(check), "GET", check.ask("GET", "k-a").decode(),
          "clients", clients_ok(clients))
    print("a rollback again:", ctl_run("rollback"))

    # (b) kvd-1 -> kvd-2-wrongreply: DBSIZE after catch-up diverges
    dbsize = cli("DBSIZE")
    b = bench("get,ping_inline")
    time.sleep(0.3)
    print("b update:", ctl_run("update", os.path.join(kvd, "kvd-2-wrongreply.so")))
    print("b status:", describe(status()))
    got = cli("DBSIZE")
    print("b DBSIZE: kvd-1's answer (as before the update):", got == dbsize)
    st = wait_outcome("rolled-back", check)
    print("b after:", describe(st))
    reason = st["last_update"]["reason"]
    print("b reason:", reason.replace("\n", " | "))
    print("b serving:", checksum(check), "DBSIZE", cli("DBSIZE") == dbsize,
          "clients", clients_ok(clients))
    print("b  " + bench_result(b))

    # (c) kvd-1 -> kvd-2-crash: TYPE crashes the follower
    b = bench("get,ping_inline")
    time.sleep(0.3)
    print("c update:", ctl_run("update", os.path.join(kvd, "kvd-2-crash.so")))
    print("c status:", describe(status()))
    print("c TYPE:", cli("TYPE", "key:1"))
    st = wait_outcome("rolled-back", check)
    print("c after:", describe(st))
    reason = st["last_update"]["reason"]
    print("c reason:", reason.splitlines()[0] if reason else "")
    print("c serving:", checksum(check), "clients", clients_ok(clients))
    print("c  " + bench_result(b))

    # (d) --retry 1: the divergence after catch-up is retried once by the
    # runtime (a new follower catches up again); the second one is final
    dbsize = cli("DBSIZE")
    print("d update:", ctl_run("update", "--retry", "1",
                               os.path.join(kvd, "kvd-2-wrongreply.so")))
    first = status()["follower_pid"]
    print("d DBSIZE:", cli("DBSIZE") == dbsize)
    st = wait_stage(lambda st: st["stage"] == "outdated-leader" and
                    st["follower_pid"] not in (None, first))
    print("d retried:", describe(st), st["last_update"]["reason"].splitlines()[0])
    print("d DBSIZE again:", cli("DBSIZE") == dbsize)
    st = wait_outcome("rolled-back", check)
    print("d after:", describe(st), st["last_update"]["reason"].splitlines()[0])
    print("d a second follower diverged:",
          not st["last_update"]["reason"].startswith("follower %d " % first))
    time.sleep(1)  # no third follower comes
    print("d final:", describe(status()))

    # (e) kvd-1 -> kvd-3 (its transformer is for kvd-2): the update fails in
    # the follower before catch-up; the client waiting gets the rollback
    print("e update:", ctl_run("update", "--retry", "2", os.path.join(kvd, "kvd-3.so")))
    print("e after:", describe(status()))
    print("e serving:", checksum(check), "clients", clients_ok(clients))

    print("promote:", ctl_run("promote"))
    print("finish:", ctl_run("finish"))
    for line in subprocess.run([ctl, "--control", sock, "status"],
                               capture_output=True, text=True).stdout.splitlines():
        if line.startswith("  #"):
            print("history:", re.sub(r": .*", "", line.strip()))
    server.terminate()
    print("kvd exit status", server.wait())


main()
