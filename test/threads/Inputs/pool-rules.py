"""pool-rules.py SCENARIO RUN CTL DIR PORT RULES: a multi-version update of the
threaded pool server (pool.c) to a version whose two workers differ on
purpose (-DRULE_DIFF: worker 1 logs each hit to pool-w1.log, worker 2 answers
"count=" instead of "hits="), under mvedsua-run (RUN) from DIR, driven with
mvedsua-ctl (CTL). Prints one fact per line.
  rules    update with the rules file RULES (both differences): the follower
           follows while the clients use both workers, one after the other
           and then both at once; promote and at once finish; the new
           version answers, and its
           log holds worker 1's hits from the fork on (the follower's writes,
           then its own); then an update to the same version (DIR/mvr2b.so)
           without rules, followed, promoted and finished
  reverse  update with RULES, promote: the old version follows the new one
           with the rules' %reverse side (its threads each match their own
           lane) while the clients use both workers at once; rollback: the
           old version takes the service back, its counts carried on from
           the new version's replies it replayed
  spawn    DIR/mp1.so -> DIR/mpr2.so (both with -DSPAWN), with RULES: a
           worker starts a helper thread while the follower follows, whose
           greeting a rule maps: the helper's new lane gets a matcher too;
           promote and finish
  none     update without rules; a hit on worker 1: the follower's thread 1
           diverges (its open), named in the report; v1 serves on
  partial  update with RULES holding worker 1's rules only: worker 1's hit is
           followed (the follower writes the log), worker 2's reply diverges
           in thread 2
"""
import os
import socket
import sys
import threading
import time

from poolclient import ask, hits, stage, start

scenario, run, ctl, d, port, rules = sys.argv[1:7]
port = int(port)
log = os.path.join(d, "pool-w1.log")
if os.path.exists(log):
    os.unlink(log)
spawn = scenario == "spawn"
server, control = start(run, ctl, d, "mp1.so" if spawn else "mv1.so", port,
                        cwd=d)


def log_lines():
    if not os.path.exists(log):
        return "no log"
    with open(log) as f:
        lines = f.read().splitlines()
    return "%d lines, %s" % (len(lines), ", ".join(lines))


def both_at_once(clients, rounds, first_hit, word2="hits"):
    """Each worker's two clients (0 and 2 on worker 1, 1 and 3 on worker 2)
    take turns in a thread of their own, the two threads at once: both
    follower threads replay at the same time. The replies that are wrong."""
    wrong = []

    def drive(worker, pair):
        n = first_hit
        for _ in range(rounds):
            for c in pair:
                got = ask(c)
                want = "v1 w%d %s=%d" % (worker, "hits" if worker == 1 else word2, n)
                if got != want:
                    wrong.append("%s (want %s)" % (got, want))
                n += 1

    ts = [threading.Thread(target=drive, args=(1, [clients[0], clients[2]])),
          threading.Thread(target=drive, args=(2, [clients[1], clients[3]]))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return wrong


try:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    print("before:", hits(clients))
    args = ["update"] + (["--rules", rules] if scenario != "none" else [])
    out = control.ask(*(args + [os.path.join(d, "mpr2.so" if spawn else "mvr2.so")]))
    print("update:", out.split(" multi-version")[0])
    if scenario == "rules":
        print("following:", hits(clients))
        wrong = both_at_once(clients, 25, 5)
        print("both at once: 100 replies, %d wrong%s" % (
            len(wrong), "".join("\n  " + w for w in wrong[:5])))
        print("status:", stage(control.status()))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("after:", hits(clients))
        print("version:", ask(clients[1], b"ver\n"))
        print("status:", stage(control.status()))
        # The next update (the same version again, no rules) starts from
        # no rules: those of the last update are not the new follower's.
        out = control.ask("update", os.path.join(d, "mvr2b.so"))
        print("again:", out.split(" multi-version")[0])
        print("following:", hits(clients))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("after:", hits(clients))
        print("log:", log_lines())
    elif scenario == "reverse":
        print("following:", hits(clients))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("promoted:", hits(clients))
        wrong = both_at_once(clients, 25, 7, "count")
        print("both at once: 100 replies, %d wrong%s" % (
            len(wrong), "".join("\n  " + w for w in wrong[:5])))
        print("status:", stage(control.status()))
        print("rollback:", control.ask("rollback").split(" (pid")[0])
        st = control.wait_for(lambda s: s["stage"] == "single-leader")
        print("status:", stage(st))
        print("after:", hits(clients))
        print("version:", ask(clients[1], b"ver\n"))
        print("log:", log_lines())
    elif spawn:
        print("spawn:", ask(clients[0], b"spawn\n"))
        print("following:", hits(clients))
        print("status:", stage(control.status()))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("after:", hits(clients))
        print("spawn after:", ask(clients[2], b"spawn\n"))
        print("log:", log_lines())
    else:
        print("worker 1:", ask(clients[0]))
        if scenario == "partial":
            # Worker 1's hit replayed first: the follower's thread 1 wrote
            # its log line (the follower's exit would end it otherwise).
            end = time.time() + 20
            while not os.path.exists(log) and time.time() < end:
                time.sleep(0.05)
            print("worker 2:", ask(clients[1]))
        st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress")
        print("status:", stage(st))
        reason = st["last_update"]["reason"]
        print("reason:", [l for l in reason.splitlines() if "divergence" in l][0])
        print("after:", hits(clients))
        print("log:", log_lines())
finally:
    server.kill()
    server.wait()
