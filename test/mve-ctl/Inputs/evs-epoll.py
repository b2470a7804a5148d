"""evs-epoll.py RUN CTL WORK PORT DIR: multi-version updates of the evs
server (Inputs/evs.c) whose versions key their epoll events differently
(v1: the descriptor; v2: a pointer to its own connection struct), driven by
mvedsua-ctl while a client load (persistent connections and connections
opened and closed all the time) checks every reply:
  (a) v1 -> v2: caught up, promote (v2 leads, v1 follows it), finish;
  (b) v1 -> v2: promoted, then rolled back on request: v1 takes the service
      back, connections v2 accepted included;
  (c) v1 -> v2-crash: promoted, then "crash" crashes the new leader: v1
      takes over and answers it;
  (d) v1-crash -> v2, caught up: "crash" crashes the old leader: v2 takes
      over and answers it;
  (e) v1 -> v2 without the map (MVEDSUA_MVE_EPOLL_MAP=0): v2, following, is
      given v1's data for a connection accepted after the fork and crashes
      on it (rolled back; the client is answered by v1).
Connections opened at each stage (before the fork, while the old version
leads, after promotion or takeover) are used at the end of each case.
Prints one fact per line.
"""
import os
import socket
import subprocess
import sys
import threading
import time

run, ctl, work, port, bins = sys.argv[1:6]
port = int(port)
sock = os.path.join(work, "evs.sock")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from supervised import Control  # noqa: E402

control = Control(ctl, sock)
ctl_run, status, wait_for = control.ask, control.status, control.wait_for


def so(v):
    return os.path.join(bins, "evs-%s.so" % v)


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def ask(self, line):
        self.s.sendall(line.encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                return "<closed>"
            self.buf += chunk
        out, self.buf = self.buf.split(b"\n", 1)
        return out.decode()

    def close(self):
        self.s.close()


class Load:
    """One persistent connection doing set/get/ping, and short connections
    (connect, set, get, quit) opened one after the other: descriptors are
    accepted, registered, closed and their numbers reused at every stage."""

    def __init__(self, tag):
        self.tag, self.replies, self.wrong = tag, 0, []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.loop)
        self.t.start()

    def check(self, got, want):
        self.replies += 1
        if got != want and len(self.wrong) < 5:
            self.wrong.append("%r instead of %r" % (got, want))

    def loop(self):
        try:
            c, i = Conn(), 0
            while not self.stop.is_set():
                i += 1
                k, v = "%s-k%d" % (self.tag, i % 50), "v%d" % i
                self.check(c.ask("set %s %s" % (k, v)), "ok")
                self.check(c.ask("get " + k), "value " + v)
                self.check(c.ask("ping"), "pong")
                if i % 4 == 0:
                    s = Conn()
                    self.check(s.ask("set %s-s %d" % (self.tag, i)), "ok")
                    self.check(s.ask("get %s-s" % self.tag), "value %d" % i)
                    self.check(s.ask("quit"), "bye")
                    self.check(s.s.recv(16), b"")  # the server closed it
                    s.close()
        except OSError as e:
            self.wrong.append("%s: %s" % (type(e).__name__, e))

    def result(self):
        self.stop.set()
        self.t.join()
        return "%s, %s" % ("replies > 0" if self.replies else "no replies",
                           "all correct" if not self.wrong else
                           "WRONG: " + "; ".join(self.wrong))


def groups_ok(groups):
    out = []
    for name, conns in groups:
        r = [c.ask("ping") for c in conns]
        r += [c.ask("set g-%s-%d x%d" % (name, i, i)) for i, c in enumerate(conns)]
        r += [c.ask("get g-%s-%d" % (name, i)) for i, c in enumerate(conns)]
        want = ["pong"] * len(conns) + ["ok"] * len(conns) + \
            ["value x%d" % i for i in range(len(conns))]
        out.append("%s %s" % (name, "ok" if r == want else r))
    return " ".join(out)


def start(tag, first, env=None):
    log = open(os.path.join(work, "evs-%s.log" % tag), "w")
    server = subprocess.Popen([run, "--control", sock, so(first), str(port)],
                              stderr=log, env=dict(os.environ, **(env or {})))
    for _ in range(1000):
        if os.path.exists(sock) and "listening" in open(log.name).read():
            break
        time.sleep(0.01)
    return server, log.name


def stop(server):
    server.terminate()
    return server.wait()


def version(st):
    return os.path.basename(st["version"] or "")


def roles(st, leader, follower):
    return "leader %s, follower %s" % (
        "the old follower" if st["leader_pid"] == follower else
        "the old leader" if st["leader_pid"] == leader else st["leader_pid"],
        "the old leader" if st["follower_pid"] == leader else
        "none" if not st["follower_pid"] else st["follower_pid"])


def after(tag, leader, follower):
    st = wait_for(lambda s: s["stage"] == "single-leader")
    lu = st["last_update"]
    print("%s after: stage %s, %s, version %s, outcome %s" % (
        tag, st["stage"], roles(st, leader, follower), version(st), lu["outcome"]))
    return lu


def reregistered(logname):
    """The log's re-registration lines: how many, and whether each moved
    some registrations (the counts depend on the load)."""
    counts = [int(l.split("mvedsua: multi-version: ", 1)[1].split()[0])
              for l in open(logname) if "epoll registrations re-registered" in l]
    return "%d time(s), each > 0: %s" % (len(counts), all(n > 0 for n in counts))


def every_stage():
    server, log = start("a", "1")
    early = [Conn() for _ in range(2)]
    load = Load("a")
    time.sleep(0.2)
    print("a update:", ctl_run("update", so("2")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    following = [Conn() for _ in range(2)]  # accepted by v1, mapped by v2
    print("a following:", groups_ok([("early", early), ("following", following)]))
    print("a promote:", ctl_run("promote").split(" leads")[0])
    st = status()
    print("a promoted: stage %s, %s, version %s" % (
        st["stage"], roles(st, leader, follower), version(st)))
    promoted = [Conn() for _ in range(2)]  # accepted by v2, mapped by v1
    print("a clients:", groups_ok([("early", early), ("following", following),
                                   ("promoted", promoted)]))
    time.sleep(0.3)
    print("a finish:", ctl_run("finish").split(" (pid")[0])
    lu = after("a", leader, follower)
    print("a load:", load.result())
    print("a clients:", groups_ok([("early", early), ("following", following),
                                   ("promoted", promoted)]))
    print("a re-registered at promotion:", reregistered(log))
    print("a exit:", stop(server))


def rollback_after_promotion():
    server, log = start("b", "1")
    early = [Conn() for _ in range(2)]
    load = Load("b")
    print("b update:", ctl_run("update", so("2")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    following = [Conn() for _ in range(2)]
    print("b promote:", ctl_run("promote").split(" leads")[0])
    promoted = [Conn() for _ in range(2)]
    print("b clients:", groups_ok([("promoted", promoted)]))
    time.sleep(0.3)
    print("b rollback:", ctl_run("rollback").split(";")[0].replace(str(follower), "F"))
    lu = after("b", leader, follower)
    print("b reason:", lu["reason"].replace(str(follower), "F"))
    print("b load:", load.result())
    print("b clients:", groups_ok([("early", early), ("following", following),
                                   ("promoted", promoted), ("new", [Conn()])]))
    print("b re-registered at promotion, at the takeover:", reregistered(log))
    print("b exit:", stop(server))


def new_leader_crashes():
    server, log = start("c", "1")
    early = [Conn() for _ in range(2)]
    load = Load("c")
    print("c update:", ctl_run("update", so("2-crash")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    following = [Conn() for _ in range(2)]
    print("c promote:", ctl_run("promote").split(" leads")[0])
    promoted = [Conn() for _ in range(2)]
    print("c clients:", groups_ok([("promoted", promoted)]))
    time.sleep(0.3)
    print("c crash:", promoted[0].ask("crash"))
    lu = after("c", leader, follower)
    print("c reason:", lu["reason"].splitlines()[0].replace(str(follower), "F"))
    print("c load:", load.result())
    print("c clients:", groups_ok([("early", early), ("following", following),
                                   ("promoted", promoted), ("new", [Conn()])]))
    print("c exit:", stop(server))


def old_leader_crashes():
    server, log = start("d", "1-crash")
    early = [Conn() for _ in range(2)]
    load = Load("d")
    print("d update:", ctl_run("update", so("2")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    following = [Conn() for _ in range(2)]
    # A few calls: the leader hands its table over at its next look.
    print("d clients:", groups_ok([("early", early), ("following", following)]))
    time.sleep(0.3)
    print("d crash:", following[0].ask("crash"))
    lu = after("d", leader, follower)
    print("d reason:", lu["reason"].splitlines()[0].replace(str(leader), "L"))
    print("d load:", load.result())
    print("d clients:", groups_ok([("early", early), ("following", following),
                                   ("new", [Conn()])]))
    print("d re-registered at the takeover:", reregistered(log))
    print("d exit:", stop(server))


def without_the_map():
    server, log = start("e", "1", {"MVEDSUA_MVE_EPOLL_MAP": "0"})
    early = Conn()
    print("e update:", ctl_run("update", so("2")).split(",")[0])
    st = status()
    leader, follower = st["leader_pid"], st["follower_pid"]
    print("e early:", early.ask("ping"))
    late = Conn()  # accepted after the fork: v1's data is its descriptor
    print("e late:", late.ask("ping"), late.ask("get nothing"))
    lu = after("e", leader, follower)
    print("e reason:", lu["reason"].splitlines()[0].replace(str(follower), "F"))
    print("e clients:", groups_ok([("early", [early]), ("late", [late])]))
    print("e exit:", stop(server))


every_stage()
rollback_after_promotion()
new_leader_crashes()
old_leader_crashes()
without_the_map()
