"""kvd-promote.py RUN CTL KVD_DIR WORK PORT: multi-version updates of kvd
through every stage, with mvedsua-ctl, while redis-benchmark runs and
connections opened at each stage stay in use:
  (a) kvd-1 -> kvd-2 (every entry transformed): update (caught up), promote
      (kvd-2 leads, kvd-1 follows), finish (kvd-2 alone); whichever process
      follows runs under SCHED_BATCH, the leader under SCHED_OTHER;
  (b) kvd-1 -> kvd-2-crash: promoted, then TYPE crashes the new leader: the
      old version takes over and answers it;
  (c) kvd-1 -> kvd-1.1: promoted, then rolled back on request: the old
      version takes the service back, connections opened meanwhile included;
  (d) kvd-2-crash -> kvd-3, caught up: TYPE crashes the old leader; the new
      version, holding its descriptors, takes over and answers it;
  (e) kvd-1 -> kvd-2 unattended (--promote-after, --finish-after, --wait
      finished) under redis-benchmark: one command, every stage;
  (f) the same counted in calls the follower matched (--promote-after
      400calls --finish-after 400calls): an idle service stays in its stage,
      a client's requests move it on;
  (g) kvd-1 -> kvd-2, caught up: the old leader is killed with SIGKILL (the
      OOM killer's, which its runtime cannot see); the new version takes
      over as in (d), told by the supervisor;
  (h) kvd-1 -> kvd-2 promoted: the new leader is killed with SIGKILL; the
      old version takes the service back as in (b).
Prints one fact per line.
"""
import os
import signal
import subprocess
import sys
import time

run, ctl, kvd, work, port = sys.argv[1:6]
port = int(port)
sock = os.path.join(work, "kvd.sock")
KEYS = 2000

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from resp import Conn as _Conn, checksum as _checksum  # noqa: E402
from supervised import Control, bench_result  # noqa: E402


def Conn():
    return _Conn(port)


control = Control(ctl, sock)
ctl_run, status, wait_for = control.ask, control.status, control.wait_for


def bench():
    return subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-n", "60000", "-c", "4", "-r",
         "1000", "-t", "set,get", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def pings(clients):
    return " ".join(c.ask("PING").decode() for c in clients)


def version(st):
    return os.path.basename(st["version"] or "")


def start(tag, first="kvd-1.so", env=None):
    log = open(os.path.join(work, "kvd-%s.log" % tag), "w")
    server = subprocess.Popen([run, "--control", sock,
                               os.path.join(kvd, first), "--port", str(port)],
                              stderr=log, env=dict(os.environ, **(env or {})))
    for _ in range(500):
        if os.path.exists(sock) and "listening" in open(log.name).read():
            break
        time.sleep(0.01)
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"],
                   input="".join("SET key:%d value-%d\r\n" % (i, i * 7)
                                 for i in range(1, KEYS + 1)),
                   capture_output=True, text=True)
    return server


def stop(server):
    server.terminate()
    return server.wait()


def policies(st):
    """The scheduling policy of the leader and the follower (sched(7))."""
    def policy(pid):
        if not pid:
            return "none"
        for line in open("/proc/%d/sched" % pid):
            if line.startswith("policy"):
                return {0: "SCHED_OTHER", 3: "SCHED_BATCH"}.get(
                    int(line.split(":")[1]), line.split(":")[1].strip())
    return "leader %s, follower %s" % (policy(st["leader_pid"]),
                                       policy(st["follower_pid"]))


def roles(st, leader, follower):
    return "leader %s, follower %s" % (
        "the old follower" if st["leader_pid"] == follower else
        "the old leader" if st["leader_pid"] == leader else st["leader_pid"],
        "the old leader" if st["follower_pid"] == leader else
        "none" if not st["follower_pid"] else st["follower_pid"])


def through_every_stage():
    server = start("a")
    check = Conn()
    before = _checksum(check, KEYS)
    print("a before:", before)
    early = [Conn() for _ in range(2)]
    b = bench()
    time.sleep(0.2)
    print("a update:", ctl_run("update", os.path.join(kvd, "kvd-2.so")))
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    print("a following:", policies(st))
    following = [Conn() for _ in range(2)]  # accepted by the old leader
    print("a promote:", ctl_run("promote").replace(str(follower), "F").replace(str(leader), "L"))
    st = status()
    print("a promoted: stage %s, %s, version %s" % (
        st["stage"], roles(st, leader, follower), version(st)))
    print("a promoted:", policies(st))
    print("a during the benchmark:", b.poll() is None)
    promoted = [Conn() for _ in range(2)]  # accepted by the new leader
    print("a keys:", _checksum(check, KEYS) == before,
          "SET", check.ask("SET", "new", "v").decode(),
          "GET", check.ask("GET", "new").decode())
    for name, group in (("early", early), ("following", following), ("promoted", promoted)):
        try:
            print("a clients", name, pings(group))
        except OSError as e:
            print("a clients", name, type(e).__name__, e)
    # The log's figures in status follow the traffic between stage changes.
    peak0 = st["log"]["peak_backlog_bytes"]
    st = wait_for(lambda s: s["log"]["peak_backlog_bytes"] > peak0, 10)
    print("a log figures refreshed under load:", st["log"]["peak_backlog_bytes"] > peak0)
    print("a finish:", ctl_run("finish").replace(str(follower), "F"))
    st = wait_for(lambda s: s["stage"] == "single-leader")
    lu = st["last_update"]
    print("a finished: stage %s, %s, version %s, outcome %s" % (
        st["stage"], roles(st, leader, follower), version(st), lu["outcome"]))
    print("a old leader gone:", not os.path.exists("/proc/%d/status" % leader) or
          "zombie" in open("/proc/%d/status" % leader).read())
    print("a redis-benchmark:", bench_result(b))
    print("a after:", _checksum(check, KEYS),
          "clients", pings(early + following + promoted))
    print("a exit:", stop(server))


def new_leader_crashes():
    server = start("b")
    check = Conn()
    before = _checksum(check, KEYS)
    print("b update:", ctl_run("update", os.path.join(kvd, "kvd-2-crash.so")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    print("b promote:", ctl_run("promote").split(" leads")[0])
    promoted = Conn()
    print("b TYPE:", check.ask("TYPE", "key:7").decode())
    st = wait_for(lambda s: s["stage"] == "single-leader")
    lu = st["last_update"]
    print("b after: stage %s, %s, version %s, outcome %s" % (
        st["stage"], roles(st, leader, follower), version(st), lu["outcome"]))
    print("b reason:", lu["reason"].splitlines()[0])
    print("b keys:", _checksum(check, KEYS) == before, "client", pings([promoted]))
    print("b exit:", stop(server))


def rollback_after_promotion():
    server = start("c")
    check = Conn()
    before = _checksum(check, KEYS)
    b = bench()
    print("c update:", ctl_run("update", os.path.join(kvd, "kvd-1.1.so")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    print("c promote:", ctl_run("promote").split(" leads")[0])
    promoted = [Conn() for _ in range(2)]
    print("c set:", promoted[0].ask("SET", "during", "promotion").decode())
    print("c rollback:", ctl_run("rollback").split(";")[0].replace(str(follower), "F").replace(str(leader), "L"))
    st = wait_for(lambda s: s["stage"] == "single-leader")
    lu = st["last_update"]
    print("c after: stage %s, %s, version %s, outcome %s" % (
        st["stage"], roles(st, leader, follower), version(st), lu["outcome"]))
    print("c reason:", lu["reason"].replace(str(follower), "F"))
    print("c redis-benchmark:", bench_result(b))
    print("c keys:", _checksum(check, KEYS) == before,
          "GET", promoted[1].ask("GET", "during").decode(),
          "clients", pings(promoted))
    print("c exit:", stop(server))


def old_leader_crashes():
    server = start("d", "kvd-2-crash.so")
    check = Conn()
    before = _checksum(check, KEYS)
    early = Conn()
    print("d update:", ctl_run("update", os.path.join(kvd, "kvd-3.so")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    following = Conn()  # accepted by the old leader, handed to the follower
    # A few calls: the leader hands its table over at its next look.
    print("d ping:", pings([check, early, following]))
    print("d TYPE:", check.ask("TYPE", "key:7").decode())
    st = wait_for(lambda s: s["stage"] == "single-leader")
    lu = st["last_update"]
    print("d after: stage %s, %s, version %s, outcome %s" % (
        st["stage"], roles(st, leader, follower), version(st), lu["outcome"]))
    print("d reason:", lu["reason"].splitlines()[0].replace(str(leader), "L"))
    print("d keys:", _checksum(check, KEYS) == before,
          "clients", pings([early, following]))
    print("d exit:", stop(server))


def killed_with_sigkill(tag, promote):
    server = start(tag)
    check = Conn()
    before = _checksum(check, KEYS)
    early = Conn()
    print(tag, "update:", ctl_run("update", os.path.join(kvd, "kvd-2.so")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    if promote:
        print(tag, "promote:", ctl_run("promote").split(" leads")[0])
    following = Conn()
    # A few calls: the leader hands its table over at its next look.
    print(tag, "ping:", pings([check, early, following]))
    time.sleep(0.3)
    os.kill(follower if promote else leader, signal.SIGKILL)
    st = wait_for(lambda s: s["stage"] == "single-leader")
    lu = st["last_update"]
    print(tag, "after: stage %s, %s, version %s, outcome %s" % (
        st["stage"], roles(st, leader, follower), version(st), lu["outcome"]))
    print(tag, "reason:", lu["reason"].splitlines()[0]
          .replace(str(leader), "L").replace(str(follower), "F"))
    print(tag, "keys:", _checksum(check, KEYS) == before,
          "SET", check.ask("SET", "new", "v").decode(),
          "GET", check.ask("GET", "new").decode(),
          "clients", pings([early, following, Conn()]))
    print(tag, "exit:", stop(server))


def unattended():
    server = start("e")
    check = Conn()
    before = _checksum(check, KEYS)
    b = bench()
    time.sleep(0.2)
    t0 = time.time()
    print("e update:", ctl_run("update", "--promote-after", "300ms",
                               "--finish-after", "300ms", "--wait", "finished",
                               os.path.join(kvd, "kvd-2.so")).split(" (pid")[0])
    print("e took at least the policy's 600 ms:", time.time() - t0 >= 0.6)
    st = status()
    lu = st["last_update"]
    print("e after: stage %s, version %s, outcome %s, follower %s" % (
        st["stage"], version(st), lu["outcome"], st["follower_pid"]))
    print("e redis-benchmark:", bench_result(b))
    print("e keys:", _checksum(check, KEYS) == before)
    print("e bad:", ctl_run("update", "--finish-after", "1s", os.path.join(kvd, "kvd-3.so")))
    print("e bad:", ctl_run("update", "--wait", "finished", "--promote-after", "1s",
                            os.path.join(kvd, "kvd-3.so")))
    print("e exit:", stop(server))


def replayed(st):
    return st["log"]["records_replayed"] if st["log"] else None


def counted_in_calls():
    server = start("f", env={"MVEDSUA_MVE_FOLLOWER_BATCH": "0"})
    check = Conn()
    before = _checksum(check, KEYS)
    print("f update:", ctl_run("update", "--promote-after", "400calls",
                               "--finish-after", "400calls",
                               os.path.join(kvd, "kvd-2.so")).split(",")[0])
    print("f opted out:", policies(status()))
    time.sleep(1.5)  # idle: the leader makes a few calls when woken
    st = status()
    print("f idle: stage %s, fewer than 400 replayed: %s" % (
        st["stage"], replayed(st) < 400))
    pinger = Conn()
    for _ in range(300):  # each PING: a wait, a read, a write (3 calls)
        pinger.ask("PING")
    st = wait_for(lambda s: s["stage"] == "updated-leader")
    print("f after 300 PINGs: stage %s, version %s" % (st["stage"], version(st)))
    time.sleep(1.0)
    st = status()
    print("f promoted and idle: stage %s" % st["stage"])
    for _ in range(300):
        pinger.ask("PING")
    st = wait_for(lambda s: s["stage"] == "single-leader")
    print("f after 300 more: stage %s, version %s, outcome %s" % (
        st["stage"], version(st), st["last_update"]["outcome"]))
    print("f keys:", _checksum(check, KEYS) == before, "client", pings([pinger]))
    for bad in ("0calls", "12cals", "calls"):
        print("f bad:", ctl_run("update", "--promote-after", bad,
                                os.path.join(kvd, "kvd-3.so")))
    print("f exit:", stop(server))


through_every_stage()
new_leader_crashes()
rollback_after_promotion()
old_leader_crashes()
killed_with_sigkill("g", promote=False)
killed_with_sigkill("h", promote=True)
unattended()
counted_in_calls()
