"""What the drivers of the threaded pool server (pool.c) share: starting it
under mvedsua-run, its line protocol, and the status as one line."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from supervised import Control  # noqa: E402,F401


def start(run, ctl, d, so, port, stderr=None, cwd=None):
    """mvedsua-run --control DIR/ctl.sock DIR/SO PORT (run from CWD), once it
    said "ready" (printed as "started: ready"): (the Popen, its Control)."""
    sock = os.path.join(d, "ctl.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    server = subprocess.Popen([run, "--control", sock, os.path.join(d, so),
                               str(port)], stdout=subprocess.PIPE,
                              stderr=stderr, text=True, cwd=cwd)
    print("started:", server.stdout.readline().strip())
    return server, Control(ctl, sock)


def ask(conn, line=b"hit\n"):
    conn.sendall(line)
    return conn.recv(100).decode().strip()


def hits(clients):
    return " | ".join(ask(c) for c in clients)


def stage(st):
    last = st["last_update"]
    return "stage=%s version=%s follower=%s last=%s" % (
        st["stage"], os.path.basename(st["version"]),
        "yes" if st.get("follower_pid") else "no",
        last["outcome"] if last else None)
