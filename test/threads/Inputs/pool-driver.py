"""pool-driver.py SCENARIO RUN CTL DIR PORT: runs DIR/v1.so (pool.c) under
mvedsua-run (RUN) on PORT, with clients connected to both worker threads, and
updates it in place with mvedsua-ctl (CTL). Prints one fact per line.
  update    every thread of the pool is blocked in epoll_wait(-1): the wake
            signal reaches main, the workers stop in their waits, all are
            relaunched in v2; the clients connected before keep their
            connections and counts, a new client is served by v2
  cli       the same as update with DIR/cli.so and DIR/cli2.so, built without
            the mvedsua_wait_points call: mvedsua-run --wait-points epoll_wait
  straggler DIR/stuck.so: a client makes worker 2 block in a read(); the
            update fails naming it, and worker 1 serves on in v1
"""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from supervised import Control  # noqa: E402

scenario, run, ctl, d, port = sys.argv[1:6]
port = int(port)
sock = os.path.join(d, "ctl.sock")
first = os.path.join(d, {"straggler": "stuck.so", "cli": "cli.so"}.get(
    scenario, "v1.so"))
second = os.path.join(d, "cli2.so" if scenario == "cli" else "v2.so")
options = ["--wait-points", "epoll_wait"] if scenario == "cli" else []
if os.path.exists(sock):
    os.unlink(sock)
env = dict(os.environ, MVEDSUA_QUIESCE_TIMEOUT_MS="500")
server = subprocess.Popen([run, "--control", sock] + options + [first, str(port)],
                          stdout=subprocess.PIPE, text=True, env=env)
print("started:", server.stdout.readline().strip())
control = Control(ctl, sock)


def hit(conn):
    conn.sendall(b"hit\n")
    return conn.recv(100).decode().strip()


try:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    print("before:", " | ".join(hit(c) for c in clients))
    if scenario == "straggler":
        clients[1].sendall(b"block\n")
        print("client 1:", clients[1].recv(100).decode().strip())
        clients = clients[0::2]  # worker 1's: worker 2 is stuck
    out = control.ask("update", "--inplace", second)
    print("update:", out.split(", pause")[0])
    print("after:", " | ".join(hit(c) for c in clients))
    with socket.create_connection(("127.0.0.1", port)) as late:
        print("new client:", hit(late))
    st = control.status()
    print("status: version=%s last=%s" % (os.path.basename(st["version"]),
                                          st["last_update"]["outcome"]))
finally:
    server.kill()
    server.wait()
