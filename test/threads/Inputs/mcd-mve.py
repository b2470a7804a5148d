#!/usr/bin/env python3
"""mcd-mve.py RUN CTL MCD_DIR WORK: mcd updated in multi-version mode along
its chain, mcd-1 -> mcd-2 -> mcd-3, under load (docs/mcd.md).

The same server, load and checks as mcd-update.py (4 workers, 10000 filled
keys, memcslap run after run, four clients checking every reply byte for
byte, a value cut in two by the updates, a reader too slow for 8 MiB of
replies), with `mvedsua-ctl update` (a follower forked, updated, replaying
every thread's lane) in three cases, each under load:
  - mcd-2-bad.so (decr answers one more than it stored): caught up, then a
    decr diverges in the follower, which is rolled back; the client got the
    old version's right answer;
  - mcd-2.so, caught up, then `rollback`;
  - mcd-2.so and then mcd-3.so, each caught up, followed for a second,
    promoted, followed the other way round for a second (the old version
    following the new one) and finished, then every check of the in-place
    test.
Prints one fact per line.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcproto  # noqa: E402
from supervised import Control  # noqa: E402
from mcdload import after_2, after_3, history, prepare, serve, start_load, stop_load  # noqa: E402

run, ctl, mcd, work = sys.argv[1:5]
sock = os.path.join(work, "mcd.sock")
control = Control(ctl, sock)


def stage():
    st = control.status()
    last = st["last_update"]
    return "stage=%s version=%s follower=%s last=%s" % (
        st["stage"], os.path.basename(st["version"]),
        "yes" if st.get("follower_pid") else "no", last["outcome"] if last else None)


def ended():
    st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress")
    return st, stage()


def update(so, label):
    out = control.ask("update", os.path.join(mcd, so))
    print("update %s: %s" % (label, out.split(" multi-version")[0]))


def under_load(port, checkers, case):
    threads, slap = start_load(port, checkers)
    time.sleep(0.5)  # memcslap and the checkers are connected and sending
    before = sum(ch.ops for ch in checkers)
    case(port)
    time.sleep(0.5)  # whoever leads now serves the same connections
    return stop_load(checkers, threads, slap, before)


def diverging(port):
    update("mcd-2-bad.so", "1 -> 2-bad")
    time.sleep(0.5)
    c = mcproto.Client(port)
    c.request(b"set dkey 0 0 2", b"10")
    print("  decr answered:", c.request(b"decr dkey 3").decode().strip())
    st, s = ended()
    print("  status:", s)
    print("  reason:", [l for l in st["last_update"]["reason"].splitlines() if "divergence" in l][0])


def rolled_back(port):
    update("mcd-2.so", "1 -> 2")
    time.sleep(0.5)
    print("  rollback:", control.ask("rollback"))
    print("  status:", ended()[1])


def promoted(so, label):
    def case(port):
        update(so, label)
        time.sleep(1)  # the new version follows under load
        print("  following:", stage())
        print("  promote:", control.ask("promote").split(" (pid")[0])
        print("  promoted:", stage())
        time.sleep(1)  # the old version follows the new one under load
        print("  still:", stage())
        print("  finish:", control.ask("finish").split(" (pid")[0])
        print("  status:", stage())
    return case


def main(port):
    c, digest, cas, checkers, pending = prepare(port)
    under_load(port, checkers, diverging)
    under_load(port, checkers, rolled_back)
    under_load(port, checkers, promoted("mcd-2.so", "1 -> 2"))
    after_2(c, port, digest, cas, pending)
    under_load(port, checkers, promoted("mcd-3.so", "2 -> 3"))
    after_3(c, port, digest, cas, checkers)
    history(ctl, sock)


serve(run, mcd, sock, work, main)
