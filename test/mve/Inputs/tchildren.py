"""tchildren.py SCENARIO RUN CTL DIR PORT: children forked by the threads of
a threaded server (test/mve-signals/Inputs/sigpool.c: main and two workers,
"fork" makes a worker fork a child that answers) while a multi-version update
runs under mvedsua-run (RUN), driven with mvedsua-ctl (CTL).
  same   DIR/sp1.so -> DIR/sp2.so (the same answers): both workers fork
         children at once, 20 each; every child is followed by a child of the
         follower's thread, nothing diverges; promoted
  bad    DIR/sp1.so -> DIR/spbad.so, whose worker 2's children answer wrong:
         the client gets the old version's answer, the follower of that child
         diverges and the update is rolled back, naming the child
Prints one fact per line.
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "threads", "Inputs"))
from poolclient import ask as ask_bytes, stage, start  # noqa: E402

scenario, run, ctl, d, port = sys.argv[1:6]
port = int(port)
server, control = start(run, ctl, d, "sp1.so", port)


def ask(conn, line):
    return ask_bytes(conn, line.encode() + b"\n")


def forks(clients, n):
    """Both workers fork n children each, at the same time; the answers."""
    seen = [set(), set()]

    def fork(i):
        for _ in range(n):
            seen[i].add(ask(clients[i], "fork"))
    both = [threading.Thread(target=fork, args=(i,)) for i in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    return " | ".join(",".join(sorted(s)) for s in seen)



try:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    print("alone:", forks(clients, 1))
    target = "sp2.so" if scenario == "same" else "spbad.so"
    print("update:", control.ask("update", os.path.join(d, target)).split(" multi-version")[0])
    print("hits:", ask(clients[0], "hit"), "|", ask(clients[1], "hit"))
    if scenario == "same":
        print("forked:", forks(clients, 20))
        print("status:", stage(control.status()))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("after:", forks(clients, 1))  # the old version follows
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("status:", stage(control.status()))
    else:
        print("forked w1:", ask(clients[0], "fork"))
        print("forked w2:", ask(clients[1], "fork"))
        followed = os.environ.get("MVEDSUA_MVE_FOLLOW_THREADED_CHILDREN") != "0"
        st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress",
                              seconds=20 if followed else 3)
        print("status:", stage(st))
        reason = st["last_update"]["reason"].replace("\n", " ")
        print("reason:", reason)
        print("after:", forks(clients, 1))
finally:
    server.kill()
    server.wait()
