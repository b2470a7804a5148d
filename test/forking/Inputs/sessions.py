"""sessions.py RUN CTL FTPD_DIR RULES BAD_SO WORK: the sessions a multi-version
leader forks are followed by sessions of the new version (docs/mve.md,
"Children"):
  (a) ftpd-1 -> ftpd-2 with the rules of examples/ftpd/rules: a session
      forked in the outdated-leader stage is compared call by call with a
      session of version 2 (the greeting and STOU need the rules: the
      follower reads a command it rejects too); PWD, RETR, STOR, QUIT match,
      the update stays in progress and is then promoted and finished;
  (b) the same with a version 2 whose PWD reply is wrong: the session's
      follower diverges on it, and the whole update is rolled back by
      itself; the client got version 1's reply.
Prints one fact per line."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftpd_lib import Control, Server, Session, make_root, md5  # noqa: E402

run, ctl_path, ftpd, rules, bad, work = sys.argv[1:7]
root = os.path.join(work, "root")
big = make_root(root)


def so(v):
    return os.path.join(ftpd, "ftpd-%d.so" % v)


def start(tag):
    sock = os.path.join(work, tag + ".sock")
    server = Server([run, "--control", sock, so(1)], root,
                    os.path.join(work, tag + ".log"))
    return server, Control(ctl_path, sock)


def outcome(ctl):
    st = ctl.status()
    last = st["last_update"] or {}
    return st["stage"], last.get("outcome")


# ---- (a) a session followed through the update, with the rules ----------
server, ctl = start("a")
try:
    rc, out = ctl.run("update", "--rules", rules, so(2))
    print("a update:", rc, out.split(",")[0].replace(ftpd + "/", ""))
    b = Session(server.port)
    print("a B:", b.greeting)
    print("a B PWD:", b.cmd("PWD"))
    print("a B STOU:", b.store("STOU", b"x")[0])
    print("a B RETR intact:", b.retr_md5("big.bin") == big)
    print("a B STOR:", b.store("STOR b.txt", b"from b")[1])
    print("a B QUIT:", b.quit())
    print("a status:", *outcome(ctl))
    print("a promote:", ctl.ask("promote"))
    print("a finish:", ctl.ask("finish"))
    st = ctl.wait_for(lambda s: s["stage"] == "single-leader")
    print("a status:", *outcome(ctl))
    print("a after:", Session(server.port).greeting)
    print("a no session diverged:", "diverged" not in server.text())
finally:
    server.stop()

# ---- (b) the new version answers PWD wrong: rolled back ------------------
server, ctl = start("b")
try:
    rc, out = ctl.run("update", "--rules", rules, bad)
    print("b update:", rc)
    c = Session(server.port)
    print("b C PWD:", c.cmd("PWD"))
    st = ctl.wait_for(lambda s: (s["last_update"] or {}).get("outcome") ==
                      "rolled-back")
    print("b status:", *outcome(ctl))
    reason = st["last_update"]["reason"]
    print("b reason:", re.sub(r"\d+", "N", reason.split("\n")[0]))
    for line in reason.split("\n")[1:]:
        if "last bytes read" in line or "first difference" in line:
            print("b reason:", re.sub(r"descriptor \d+", "descriptor N", line.strip()))
    print("b C goes on:", c.cmd("PWD"), "|", c.cmd("NOOP"))
finally:
    server.stop()
