"""Drives in-place updates of kvd under traffic.

usage: kvd-inplace.py MVEDSUA_RUN KVD.so UPDATE[:UPDATE...]

Starts KVD.so under mvedsua-run (on a port kvd picks) with KVD_TEST_UPDATES=UPDATEs (see
kvd-trigger.c), fills it with keys, keeps persistent clients connected and
redis-benchmark running, then triggers each update with SIGUSR1 to the
supervisor (which forwards it) and checks, after each: the update finished,
every key still has its value, every persistent client still gets answers,
and which kvd_version INFO reports. At the end: redis-benchmark exited 0
without errors and kvd stops cleanly on SIGTERM. Prints one line per fact.
"""
import os
import signal
import subprocess
import sys
import threading
import time

KEYS = 2000
CLIENTS = 4


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from resp import Conn  # noqa: E402


class Stderr(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines, self.cv = stream, [], threading.Condition()

    def run(self):
        for raw in self.stream:
            with self.cv:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cv.notify_all()

    def wait_for(self, text, start=0, timeout=20):
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for i, l in enumerate(self.lines[start:], start):
                    if text in l:
                        return i
                left = deadline - time.time()
                if left <= 0:
                    sys.exit("timed out waiting for %r; stderr so far:\n%s"
                             % (text, "\n".join(self.lines)))
                self.cv.wait(left)


def check_state(port, clients, label):
    fresh = Conn(port)
    got = fresh.pipeline([("GET", "fill:%d" % i) for i in range(KEYS)])
    intact = sum(g == b"value-%d" % i for i, g in enumerate(got))
    alive = sum(c.ask("PING") == b"+PONG" for c in clients)
    info = fresh.ask("INFO", "server").decode()
    version = [l for l in info.split("\r\n") if l.startswith("kvd_version:")]
    print("%s: %s, %d of %d keys intact, %d of %d clients answered"
          % (label, version[0] if version else "no kvd_version", intact, KEYS,
             alive, len(clients)))
    sys.stdout.flush()


def main():
    run, app, updates = sys.argv[1], sys.argv[2], sys.argv[3]
    env = dict(os.environ, KVD_TEST_UPDATES=updates)
    proc = subprocess.Popen([run, app, "--port", "0"], env=env,
                            stderr=subprocess.PIPE)
    err = Stderr(proc.stderr)
    err.start()
    listening = err.lines[err.wait_for("kvd: listening on ")]
    port = int(listening.rsplit(":", 1)[1])
    filler = Conn(port)
    oks = filler.pipeline([("SET", "fill:%d" % i, "value-%d" % i) for i in range(KEYS)])
    print("filled: %d OK" % sum(r == b"+OK" for r in oks))
    clients = [Conn(port) for _ in range(CLIENTS)]
    check_state(port, clients, "before")
    bench = subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-n", "100000", "-c", "8", "-r",
         "1000", "-t", "set,get,incr", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.3)
    seen = 0
    for n, target in enumerate(updates.split(":"), 1):
        os.kill(proc.pid, signal.SIGUSR1)
        seen = err.wait_for("update to %s finished" % target, seen) + 1
        check_state(port, clients, "after update %d" % n)
    out, _ = bench.communicate(timeout=120)
    text = out.decode(errors="replace")
    bad = [l for l in text.splitlines() if "rror" in l]
    print("redis-benchmark: exit %d, %d error lines%s"
          % (bench.returncode, len(bad), "".join("\n  " + b for b in bad[:5])))
    proc.send_signal(signal.SIGTERM)
    print("kvd exit status %d" % proc.wait(timeout=20))
    err.join(timeout=5)
    for l in err.lines:
        if l.startswith("mvedsua:") or l.startswith("kvd"):
            print("stderr: " + l)


if __name__ == "__main__":
    main()
