"""mve.py RUN CTL FTPD_DIR WORK: multi-version updates of the ftpd master
under mvedsua-run, the follower forked at 'accept' while sessions fork:
  (a) ftpd-1 -> ftpd-2 under a loop of curl transfers: caught up (the old
      master leads and forks the sessions: they run version 1), promote (the
      new version leads and forks them: STOU works), finish (the old master
      ends; the sessions it forked, now orphans, keep serving);
  (b) ftpd-2 -> ftpd-3 (the counter transformed in the follower): rolled
      back on request, then again through promote and finish: the greeting's
      number counts every session since the start;
  (c) SIGTERM in the updated-leader stage: the service stops (the signal
      reaches the follower at the same record), the sessions with it.
Runtime messages come from the leader and the follower only, never from a
session. Prints one fact per line; pids as M (the first master), F (the
first follower), F2 (the second's)."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftpd_lib import (Control, Load, Server, Session, md5,  # noqa: E402
                      md5_file, make_root, payload, session_process)

run, ctl_path, ftpd, work = sys.argv[1:5]
sock = os.path.join(work, "ftpd.sock")
root = os.path.join(work, "root")
big = make_root(root)
ctl = Control(ctl_path, sock)
names = {}
session_pids = []


def so(v):
    return os.path.join(ftpd, "ftpd-%d.so" % v)


def name(pid):
    return names.get(pid, str(pid))


def open_session(port, leader):
    s = Session(port)
    pid = session_process(leader, port, s)
    if pid:
        session_pids.append(pid)
    return s, pid


def parent(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def show(st):
    return "stage %s, version %s, leader %s, follower %s, outcome %s" % (
        st["stage"], os.path.basename(st["version"]), name(st["leader_pid"]),
        name(st["follower_pid"]) if st["follower_pid"] else "none",
        st["last_update"]["outcome"] if st["last_update"] else "none")


def ask(*args):
    out = ctl.ask(*args).replace(ftpd + "/", "")
    for pid, n in names.items():
        out = re.sub(r"\b%d\b" % pid, n, out)
    return re.sub(r"backlog .*", "backlog ...", out)


server = Server([run, "--control", sock, so(1)], root, os.path.join(work, "ftpd.log"))
load = None
try:
    port = server.port
    master = ctl.status()["leader_pid"]
    names[master] = "M"
    # ---- (a) ftpd-1 -> ftpd-2 through every stage, under load ------------
    a, a_pid = open_session(port, master)
    print("a A:", a.greeting)
    load = Load(port, root, big)
    load.start()
    print("a load running:", load.wait_rounds(2))
    rc, out = ctl.run("update", so(2))
    follower = ctl.status()["follower_pid"]
    names[follower] = "F"
    print("a update:", ask("status").split("\n")[0] if rc else "exit 0", "|",
          re.sub(r"\b%d\b" % follower, "F", out.replace(ftpd + "/", "")).split(", backlog")[0])
    print("a status:", show(ctl.status()))
    print("a load goes on:", load.wait_rounds(2))
    b, b_pid = open_session(port, master)
    print("a B (outdated-leader):", b.greeting, "| forked by", name(parent(b_pid)),
          "| STOU", b.store("STOU", b"b")[0])
    print("a promote:", ask("promote"))
    print("a status:", show(ctl.status()))
    print("a load sees version 2:", load.wait_version(2))
    c, c_pid = open_session(port, follower)
    data = payload(9, 250000)
    print("a C (updated-leader):", c.greeting, "| forked by", name(parent(c_pid)),
          "| STOU", c.store("STOU", data))
    print("a C STOU file intact:", md5_file(os.path.join(root, "stou")) == md5(data))
    print("a finish:", ask("finish"))
    st = ctl.wait_for(lambda s: s["stage"] == "single-leader")
    print("a status:", show(st))
    print("a old master gone:", not os.path.exists("/proc/%d" % master) or
          "zombie" in open("/proc/%d/status" % master).read())
    print("a load goes on:", load.wait_rounds(2))
    print("a A and B (forked by the old master):", a.cmd("NOOP"), b.cmd("NOOP"),
          "| RETR intact", a.retr_md5("big.bin") == big, b.retr_md5("big.bin") == big,
          "| their parent is F:", parent(a_pid) == follower or parent(b_pid) == follower)
    print("a C:", c.cmd("NOOP"), "| RETR intact", c.retr_md5("big.bin") == big)
    print("a load:", load.finish())
    load_sessions = load.sessions
    load = None

    # ---- (b) ftpd-2 -> ftpd-3: rolled back, then through every stage -----
    rc, out = ctl.run("update", so(3))
    f2 = ctl.status()["follower_pid"]
    names[f2] = "F2"
    print("b update:", "exit %d" % rc, "|",
          re.sub(r"\b%d\b" % f2, "F2", out.replace(ftpd + "/", "")).split(", backlog")[0])
    d, d_pid = open_session(port, follower)
    print("b D:", d.greeting)
    print("b rollback:", ask("rollback"))
    print("b status:", show(ctl.wait_for(lambda s: s["stage"] == "single-leader")))
    rc, out = ctl.run("update", so(3))
    f3 = ctl.status()["follower_pid"]
    names[f3] = "F3"
    print("b update again:", "exit %d" % rc, "|",
          re.sub(r"\b%d\b" % f3, "F3", out.replace(ftpd + "/", "")).split(", backlog")[0])
    print("b promote:", ask("promote"))
    e, e_pid = open_session(port, f3)
    number = int(e.greeting.split()[-1].rstrip(")."))
    print("b E:", e.greeting.replace(str(number), "N"), "| N counts every session:",
          number == load_sessions + 5 or "%d, expected %d" % (number, load_sessions + 5))
    print("b finish:", ask("finish"))
    print("b status:", show(ctl.wait_for(lambda s: s["stage"] == "single-leader")))
    print("b E APPE:", e.store("APPE pub/log.txt", b"e\n"), "| D APPE:", d.store("APPE pub/log.txt", b"d\n")[0])
    print("b every session answers:", " ".join(s.cmd("NOOP")[:3] for s in (a, b, c, d, e)))
    for s in (a, b, c, d, e):
        s.quit()
    print("stop: exit", server.stop())
    log = server.text()
    speakers = sorted(set(name(int(p)) for p in re.findall(r"this process \(pid (\d+)\)", log)))
    print("runtime lines 'this process (pid X)' name:", " ".join(speakers))
    print("promotions reported:", log.count(": promoted; this process"),
          "| conclusions reported:", len(re.findall(r"(finished|rolled back): .*goes on alone", log)))
    named = set(int(p) for p in re.findall(r"\bpid (\d+)", log))
    print("no session spoke:", not (named & set(session_pids)), "| sessions seen:", len(session_pids))

    # ---- (c) SIGTERM while the new version leads and the old one follows --
    server = Server([run, "--control", sock, so(1)], root, os.path.join(work, "ftpd-c.log"))
    port = server.port
    master = ctl.status()["leader_pid"]
    names[master] = "M"
    a, a_pid = open_session(port, master)
    rc, out = ctl.run("update", so(2))
    follower = ctl.status()["follower_pid"]
    names[follower] = "F"
    print("c update: exit %d, promote: %s" % (rc, ask("promote")))
    c, c_pid = open_session(port, follower)
    print("c sessions:", a.greeting, "|", c.greeting)
    print("c stop: exit", server.stop())
    print("c sessions after the stop:", a.quit(), "|", c.quit())
    log = server.text()
    print("c log: shutting down %d, diverged %s, took over %s" % (
        log.count("ftpd: shutting down"), "diverged" in log, "took over" in log))
except BaseException:
    if load:
        load.stop_event.set()
    server.kill()
    raise
finally:
    for p in session_pids:  # orphans of an ended master are nobody's to kill
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
