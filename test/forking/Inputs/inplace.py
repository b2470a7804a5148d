"""inplace.py RUN CTL FTPD_DIR WORK: in-place updates of the ftpd master
(ftpd-1 -> ftpd-2 -> ftpd-3) under mvedsua-run while sessions are open and a
loop of curl downloads and uploads runs:
  - sessions opened before an update keep working on the old version (their
    process is a copy of the old master: STOU stays unknown to them);
  - sessions opened after it get the new version (STOU, then APPE);
  - the update request reaches the master only: no session child reads the
    channel, status names the master all along;
  - no client error, every file transferred intact;
  - ftpd-2 -> ftpd-3 transforms the master's state (the session counter,
    renamed and widened): the greeting's session number goes on from it.
Prints one fact per line."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftpd_lib import (Control, Load, Server, Session, children, lftp,  # noqa: E402
                      make_root, maps_of, md5, md5_file, payload, session_process)

run, ctl_path, ftpd, work = sys.argv[1:5]
sock = os.path.join(work, "ftpd.sock")
root = os.path.join(work, "root")
big = make_root(root)
ctl = Control(ctl_path, sock)


def so(v):
    return os.path.join(ftpd, "ftpd-%d.so" % v)


def open_session(port, master):
    """A logged-in session and its process (a child of the master)."""
    s = Session(port)
    return s, session_process(master, port, s)


def uses(pid, v):
    return ("ftpd-%d.so" % v) in maps_of(pid)


server = Server([run, "--control", sock, so(1)], root, os.path.join(work, "ftpd.log"))
load = None
try:
    port = server.port
    st = ctl.status()
    master = st["leader_pid"]
    print("start: version %s, the master is the supervisor's child %s" % (
        os.path.basename(st["version"]), master in children(server.proc.pid)))
    a, a_pid = open_session(port, master)
    print("session A:", a.greeting, "| its own process:", a_pid is not None and a_pid != master)
    load = Load(port, root, big)
    load.start()
    print("load running:", load.wait_rounds(2))

    # ---- ftpd-1 -> ftpd-2, in place -------------------------------------
    print("update 1->2:", ctl.ask("update", "--inplace", so(2)).replace(ftpd + "/", ""))
    st = ctl.status()
    print("status: version %s, leader is the master %s, stage %s" % (
        os.path.basename(st["version"]), st["leader_pid"] == master, st["stage"]))
    print("load sees version 2:", load.wait_version(2))
    print("load goes on:", load.wait_rounds(2))
    # A: opened before the update, still the old version's process.
    print("A after: PWD", a.cmd("PWD"), "| NOOP", a.cmd("NOOP"))
    print("A RETR intact:", a.retr_md5("big.bin") == big)
    print("A STOU:", a.store("STOU", b"from A"))
    print("A's process maps ftpd-1.so %s, ftpd-2.so %s" % (uses(a_pid, 1), uses(a_pid, 2)))
    b, b_pid = open_session(port, master)
    data = payload(5, 200000)
    print("session B:", b.greeting)
    print("B STOU:", b.store("STOU", data))
    print("B STOU file intact:", md5_file(os.path.join(root, "stou")) == md5(data))
    print("B's process maps ftpd-2.so:", uses(b_pid, 2))
    rc, out = lftp(port, ["quote STOU"])
    print("lftp quote STOU: exit %d: %s" % (rc, out))

    # ---- ftpd-2 -> ftpd-3, in place: the master's state transformed ------
    print("update 2->3:", ctl.ask("update", "--inplace", so(3)).replace(ftpd + "/", ""))
    lu = ctl.status()["last_update"]
    print("transformed entries:", lu["transformed"])
    print("load sees version 3:", load.wait_version(3))
    print("load:", load.finish())
    load_sessions = load.sessions
    load = None
    c, c_pid = open_session(port, master)
    print("session C:", c.greeting.replace(str(c.greeting.split()[-1]), "N)."))
    # Every session since the start: A, B, the lftp one, the load's curls,
    # and C itself; version 2 counted them in an unsigned int "sessions".
    number = int(c.greeting.split()[-1].rstrip(")."))
    print("C's number counts every session since the start:",
          number == load_sessions + 4 or "%d, expected %d" % (number, load_sessions + 4))
    print("C APPE:", c.store("APPE pub/log.txt", b"line\n"))
    print("B APPE (version 2):", b.store("APPE pub/log.txt", b"line\n"))
    print("A still answers:", a.cmd("NOOP"), "| A RETR intact:", a.retr_md5("big.bin") == big)
    st = ctl.status()
    print("status: version %s, leader is the master %s, history %s" % (
        os.path.basename(st["version"]), st["leader_pid"] == master,
        " ".join("%s->%s %s" % (os.path.basename(h["from"]), os.path.basename(h["to"]),
                                h["outcome"]) for h in st["history"])))
    for s in (a, b, c):
        s.quit()
    uploads = sorted(n for n in os.listdir(os.path.join(root, "load")))
    print("uploads on disk:", len(uploads) > 0)
    print("stop: exit", server.stop())
    log = server.text()
    print("log: updates taken at 'accept':", log.count("updating to"),
          "| at 'session':", log.count("at update point 'session'"))
except BaseException:
    if load:
        load.stop_event.set()
    server.kill()
    raise
