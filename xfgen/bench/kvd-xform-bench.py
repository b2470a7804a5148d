#!/usr/bin/env python3
"""Transformation throughput of a generated state transformer on kvd.

usage: kvd-xform-bench.py MVEDSUA_RUN KVD1.so KVD2.so COPYBENCH KEYS

Starts KVD1.so (a kvd-1 build with test/update/Inputs/kvd-trigger.c) under
mvedsua-run, fills it with KEYS keys, updates it in place to KVD2.so (kvd-2
with the transformer mvedsua-xfgen generated from kvd-1-2.xf), and reports
the update's pause as mvedsua reports it: every struct entry changed type
(two fields added), so every entry is a new object, transformed field by
field, and every bucket array is rebuilt. Then runs COPYBENCH (copy-bench.c)
with the same number of objects and sizes: a plain copy of the same bytes
(one malloc and memcpy per object, and one memcpy of all of them), measured
in the same run on the same machine. Prints one line per fact.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "lib"))
from resp import resp  # noqa: E402


def fill(port, keys):
    s = socket.create_connection(("127.0.0.1", port))
    batch = 20000
    for start in range(0, keys, batch):
        n = min(batch, keys - start)
        s.sendall(b"".join(resp("SET", "key:%d" % i, "value-%d" % i)
                           for i in range(start, start + n)))
        got = 0
        buf = b""
        while got < n:
            buf += s.recv(1 << 20)
            got = buf.count(b"\r\n")
    s.sendall(resp("DBSIZE"))
    return s.recv(100).decode().strip()


def main():
    run, v1, v2, copybench, keys = sys.argv[1:6]
    keys = int(keys)
    env = dict(os.environ, KVD_TEST_UPDATES=v2)
    proc = subprocess.Popen([run, v1, "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    ready = threading.Event()

    def reader():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            ready.set()
    threading.Thread(target=reader, daemon=True).start()
    while not any("listening on" in l for l in lines):
        if proc.poll() is not None:
            sys.exit("mvedsua-run exited (%d) before kvd listened:\n%s"
                     % (proc.returncode, "\n".join(lines)))
        ready.wait(1)
        ready.clear()
    port = int([l for l in lines if "listening on" in l][0].rsplit(":", 1)[1])
    t = time.time()
    print("filled %s keys in %.1f s" % (fill(port, keys), time.time() - t))
    os.kill(proc.pid, signal.SIGUSR1)
    deadline = time.time() + 120
    done = None
    while time.time() < deadline and not done:
        done = [l for l in lines if "finished at update point" in l or "update failed" in l or "refused" in l]
        time.sleep(0.1)
    print(done[0] if done else "no update finished")
    m = re.search(r"pause (\d+) us", done[0] if done else "")
    if m:
        us = int(m.group(1))
        print("transform: %d entries in %.3f s: %.2f M objects/s (pause, all included)"
              % (keys, us / 1e6, keys / us))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    print(subprocess.run([copybench, str(keys)], capture_output=True,
                         text=True).stdout.strip())


if __name__ == "__main__":
    main()
