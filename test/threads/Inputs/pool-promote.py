"""pool-promote.py SCENARIO RUN CTL DIR PORT: the updated-leader stage and
the takeovers of a threaded server (pool.c: main and two workers, each in
epoll_wait(-1)) under mvedsua-run (RUN), driven with mvedsua-ctl (CTL), with
four clients connected to both workers before the fork and kept to the end;
every reply is printed. Prints one fact per line.
  killed    DIR/mv1.so -> DIR/mv2.so, caught up and the descriptors handed
            over; the leader is killed (SIGABRT): the follower's threads
            replay their lanes to the end and the new version takes over,
            serving the same connections and new ones
  sigkill   killed, with SIGKILL (the OOM killer's), which the leader's
            runtime cannot see: the supervisor tells the follower
  sigkill-updating
            DIR/mv1.so -> DIR/mvslow.so (1.5 s to update): the leader is
            killed with SIGKILL while the follower updates, before it holds
            the leader's descriptors: it cannot take over, and the program
            ends as its leader did (mvedsua-run killed by SIGKILL)
  term-then-kill
            DIR/mvterm.so (it ignores SIGTERM) -> DIR/mv2.so, caught up:
            the supervisor is asked to end the service (SIGTERM, passed on
            and ignored), then the leader is killed with SIGKILL: the
            service was ending, so no takeover (mvedsua-run killed by
            SIGKILL too)
  term-then-update
            DIR/mvterm.so: SIGTERM passed on and ignored, the service goes
            on; then an update to DIR/mv2.so, caught up, and the leader is
            killed with SIGKILL: the update request said the service goes
            on, so its follower takes over
  crash     DIR/mvcrash.so -> DIR/mv2.so: the old version's worker crashes on
            "crash" after the hand-over; the new version takes over and
            answers it
  stages    DIR/mv1.so -> DIR/mv2.so through every stage: promote (the new
            version's threads lead their lanes, the old version's follow
            them), a new client while the new version leads, finish
  rollback  DIR/mv1.so -> DIR/mv2.so promoted, then rolled back: the old
            version's threads replay what the new version's did and take
            over, the connection made while the new version led included
  newcrash  DIR/mv1.so -> DIR/mv2crash.so promoted; the new version's worker
            crashes on "crash": the old version takes over and answers it
  diverge   DIR/mv1.so -> DIR/mv2.so promoted; the versions answer "ver"
            differently: the old version, following, finds the difference
            and takes over (the new version's reply went out)
"""
import os
import signal
import socket
import sys
import threading
import time

from poolclient import ask, hits, stage, start  # noqa: E402

scenario, run, ctl, d, port = sys.argv[1:6]
port = int(port)
errors = os.path.join(d, "%s.stderr" % scenario)
first = {"crash": "mvcrash.so", "term-then-kill": "mvterm.so",
         "term-then-update": "mvterm.so"}.get(scenario, "mv1.so")
target = {"newcrash": "mv2crash.so",
          "sigkill-updating": "mvslow.so"}.get(scenario, "mv2.so")
server, control = start(run, ctl, d, first, port, open(errors, "w"))


def wait_stderr(text, seconds=20):
    """Whether the server's stderr says `text` within `seconds`."""
    end = time.time() + seconds
    while time.time() < end:
        with open(errors) as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


try:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    for c in clients:
        c.settimeout(10)
    print("before:", hits(clients))
    if scenario == "sigkill-updating":
        asked = {}
        upd = threading.Thread(target=lambda: asked.update(
            out=control.ask("update", os.path.join(d, target))))
        upd.start()
        time.sleep(0.5)
        print("status:", stage(control.status()))
        os.kill(control.status()["leader_pid"], signal.SIGKILL)
        print("program ended: mvedsua-run", server.wait(timeout=20))
        upd.join()
        print("update:", asked["out"].split(":")[0])
        sys.exit(0)
    if scenario == "term-then-update":
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        print("after SIGTERM: still serving:", hits(clients[:2]))
    out = control.ask("update", os.path.join(d, target))
    if scenario == "term-then-update":
        print("update:", out.split(" multi-version")[0])
        print("handed over:", wait_stderr("descriptors handed over"))
        old = control.status()["leader_pid"]
        os.kill(old, signal.SIGKILL)
        st = control.wait_for(lambda s: s["leader_pid"] != old and
                              s["last_update"]["outcome"] != "in-progress")
        print("after the kill:", hits(clients[:2]), "| leader is the follower:",
              st["leader_pid"] != old)
        sys.exit(0)
    if scenario == "term-then-kill":
        print("update:", out.split(" multi-version")[0])
        print("handed over:", wait_stderr("descriptors handed over"))
        leader = control.status()["leader_pid"]
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        print("after SIGTERM: still serving:", hits(clients[:2]))
        os.kill(leader, signal.SIGKILL)
        print("program ended: mvedsua-run", server.wait(timeout=20))
        sys.exit(0)
    print("update:", out.split(" multi-version")[0])
    print("following:", hits(clients))
    print("handed over:", wait_stderr("descriptors handed over"))
    if scenario in ("killed", "sigkill", "crash"):
        old = control.status()["leader_pid"]
        print("status:", stage(control.status()))
        if scenario in ("killed", "sigkill"):
            os.kill(old, signal.SIGABRT if scenario == "killed" else signal.SIGKILL)
        else:
            print("crash:", ask(clients[1], b"crash\n"))
        st = control.wait_for(lambda s: s["leader_pid"] != old and
                              s["last_update"]["outcome"] != "in-progress")
        print("after:", hits(clients))
        print("version:", ask(clients[1], b"ver\n"))
        print("handles:", ask(clients[0], b"self\n"), "|",
              ask(clients[1], b"self\n"))
        with socket.create_connection(("127.0.0.1", port)) as late:
            late.settimeout(10)
            print("new client:", ask(late))
        st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress")
        print("status:", stage(st), "leader is the follower:",
              st["leader_pid"] != old)
        print("reason:", st["last_update"]["reason"].splitlines()[0])
        print("again:", hits(clients))
    else:
        old = control.status()["leader_pid"]
        promoted = control.ask("promote")
        new = control.status()["leader_pid"]
        print("promote:", promoted.replace("pid %d" % new, "pid NEW")
              .replace("pid %d" % old, "pid OLD"))
        print("status:", stage(control.status()), "leader is the follower:",
              new != old)
        print("promoted:", hits(clients))
        late = socket.create_connection(("127.0.0.1", port))
        late.settimeout(10)
        print("new client:", ask(late))
        if scenario == "stages":
            done = control.ask("finish")
            print("finish:", done.replace("pid %d" % new, "pid NEW"))
        elif scenario == "rollback":
            back = control.ask("rollback")
            print("rollback:", back.replace("pid %d" % new, "pid NEW")
                  .replace("pid %d" % old, "pid OLD"))
        elif scenario == "newcrash":
            print("crash:", ask(clients[1], b"crash\n"))
        else:  # the versions answer "ver" differently
            print("ver:", ask(clients[1], b"ver\n"))
        st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress")
        print("status:", stage(st), "leader:",
              {old: "OLD", new: "NEW"}.get(st["leader_pid"], "other"))
        reason = st["last_update"]["reason"].splitlines()
        print("reason:", (reason[0] if reason else "")
              .replace("pid %d" % new, "pid NEW").replace("pid %d" % old, "pid OLD"))
        print("after:", hits(clients), "| late:", ask(late))
        print("version:", ask(clients[1], b"ver\n"))
        with socket.create_connection(("127.0.0.1", port)) as later:
            later.settimeout(10)
            print("newer client:", ask(later))
        print("old leader gone:" if scenario == "stages" else "new leader gone:",
              not os.path.exists("/proc/%d" % (old if scenario == "stages" else new))
              or open("/proc/%d/stat" % (old if scenario == "stages" else new)).read().split()[2] == "Z")
finally:
    server.kill()
    server.wait()
