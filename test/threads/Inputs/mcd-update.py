#!/usr/bin/env python3
"""mcd-update.py RUN CTL MCD_DIR WORK: mcd updated in place along its chain,
mcd-1 -> mcd-2 -> mcd-3, under load (docs/mcd.md).

mcd-1.so runs under mvedsua-run with 4 worker threads, filled with 10000
keys (flags and lengths varying). For each update, memcslap (4 client
threads, set, run after run) and four checking clients (connected before the first update,
each setting, reading back and incrementing its own keys and reading the
filled ones, every reply compared with the exact expected bytes) run while
`mvedsua-ctl update --inplace` is asked. After each update: the outcome
mvedsua-ctl reported, memcslap's exit status and errors, the clients' replies
(all correct, the connections still the same), the filled keys with their
values, flags and CAS uniques as before (gets over all 10000), fresh
connections served by every worker, and the new version's own commands
(touch/gat/gats and `stats items` in 2; `stats threads` in 3, and CAS uniques
that continue from version 2's counter). Prints one fact per line.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervised import Control  # noqa: E402
from mcdload import after_2, after_3, history, prepare, serve, start_load, stop_load  # noqa: E402

run, ctl, mcd, work = sys.argv[1:5]
sock = os.path.join(work, "mcd.sock")
control = Control(ctl, sock)


def under_load(port, checkers, so, label):
    threads, slap = start_load(port, checkers)
    time.sleep(0.5)  # memcslap and the checkers are connected and sending
    before = sum(ch.ops for ch in checkers)
    reply = control.ask("update", "--inplace", os.path.join(mcd, so))
    print("update %s: %s" % (label, reply))
    time.sleep(0.5)  # the new version serves the same connections
    return stop_load(checkers, threads, slap, before)


def main(port):
    c, digest, cas, checkers, pending = prepare(port)
    under_load(port, checkers, "mcd-2.so", "1 -> 2")
    after_2(c, port, digest, cas, pending)
    under_load(port, checkers, "mcd-3.so", "2 -> 3")
    after_3(c, port, digest, cas, checkers)
    history(ctl, sock)


serve(run, mcd, sock, work, main)
