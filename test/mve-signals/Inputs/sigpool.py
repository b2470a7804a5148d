"""sigpool.py RUN CTL DIR PORT: signals for the threads of a threaded server
(sigpool.c: main and two workers) while a multi-version update of DIR/sp1.so
to DIR/sp2.so (the same answers) runs, under mvedsua-run (RUN) driven with
mvedsua-ctl (CTL). A signal sent to one thread (pthread_kill) is handled by
that thread, in the leader and, at the same record of that thread's lane, in
the follower; signals sent to the process are handled by whichever thread
the kernel chose, and by the same thread of the follower. Prints one fact
per line.
"""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "threads", "Inputs"))
from poolclient import ask as ask_bytes, stage, start  # noqa: E402

run, ctl, d, port = sys.argv[1:5]
port = int(port)
server, control = start(run, ctl, d, "sp1.so", port)


def ask(conn, line):
    return ask_bytes(conn, line.encode() + b"\n")


def hits(clients):
    return " | ".join(ask(c, "hit") for c in clients)


def kicks(clients, n):
    """Worker 1 signals worker 2 and worker 2 worker 1, n times each, from
    two client threads at once: the leader's workers record their signals
    at the same time, and the follower's two threads replay them at once."""
    def kick(client, target):
        for _ in range(n):
            ask(client, "kick %d" % target)
    both = [threading.Thread(target=kick, args=(clients[0], 2)),
            threading.Thread(target=kick, args=(clients[1], 1))]
    for t in both:
        t.start()
    for t in both:
        t.join()



try:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    kicks(clients, 1)
    print("alone:", hits(clients))
    print("update:", control.ask("update", os.path.join(d, "sp2.so")).split(" multi-version")[0])
    kicks(clients, 3)
    print("kicked:", hits(clients))
    for _ in range(5):  # to the process: any thread may take each
        server.send_signal(signal.SIGUSR2)
        time.sleep(0.05)
        hits(clients)
    kicks(clients, 150)
    print("kicked:", hits(clients))
    time.sleep(0.3)
    print("status:", stage(control.status()))
    print("promote:", control.ask("promote").split(" (pid")[0])
    kicks(clients, 1)
    print("after:", hits(clients))  # the old version follows the new one
    print("finish:", control.ask("finish").split(" (pid")[0])
    print("version:", ask(clients[1], "ver"))
    st = control.status()
    print("status:", stage(st))
    if st["last_update"]["outcome"] != "finished":
        print("reason:", st["last_update"]["reason"])
finally:
    server.kill()
    server.wait()
