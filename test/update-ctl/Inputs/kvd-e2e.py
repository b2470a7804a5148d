"""kvd-e2e.py RUN CTL KVD_DIR WORK PORT: kvd end to end under mvedsua-run,
updated with mvedsua-ctl while clients stay connected and redis-benchmark
runs: kvd-1 -> kvd-1.1 (same state, new code), a refused kvd-3 (built for
another predecessor), then kvd-1.1 -> kvd-2 (state transformed). After each
step: every key has its value (a checksum over all of them), the clients
connected before still get answers, INFO's kvd_version, redis-benchmark's
exit status and errors. Prints one fact per line.
"""
import os
import subprocess
import sys
import time

run, ctl, kvd, work, port = sys.argv[1:6]
port = int(port)
sock = os.path.join(work, "kvd.sock")
KEYS = 20000


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from resp import Conn as _Conn, checksum as _checksum, resp  # noqa: E402
from supervised import Control, bench_result as _bench_result  # noqa: E402


def Conn():
    return _Conn(port)


def checksum(c):
    """All keys, pipelined on one connection: missing count and an md5."""
    return _checksum(c, KEYS)


def version(c):
    info = c.ask("INFO", "server").decode()
    return [l for l in info.split("\r\n") if l.startswith("kvd_version:")][0]


ctl_run = Control(ctl, sock).ask


def bench():
    return subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-n", "60000", "-c", "8", "-r",
         "1000", "-t", "set,get,incr", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def bench_result(b):
    return "redis-benchmark: " + _bench_result(b)


def under_load(clients, *ctl_args):
    """Runs one mvedsua-ctl request while redis-benchmark runs."""
    b = bench()
    time.sleep(0.5)  # the benchmark is connected and sending
    print("update:", ctl_run(*ctl_args))
    print("  during the benchmark:", b.poll() is None)
    print("  " + bench_result(b))
    print("  clients:", " ".join(c.ask("PING").decode() for c in clients))


def main():
    log = open(os.path.join(work, "kvd.log"), "w")
    server = subprocess.Popen([run, "--control", sock,
                               os.path.join(kvd, "kvd-1.so"), "--port", str(port)],
                              stderr=log)
    for _ in range(500):
        if os.path.exists(sock) and "listening" in open(log.name).read():
            break
        time.sleep(0.01)
    fill = subprocess.run(["redis-cli", "-p", str(port), "--pipe"],
                          input="".join("SET key:%d value-%d\r\n" % (i, i * 7)
                                        for i in range(1, KEYS + 1)),
                          capture_output=True, text=True)
    print("filled:", fill.stdout.strip().splitlines()[-1])
    check = Conn()
    clients = [Conn() for _ in range(4)]  # connected before every update
    print("before:", version(check), checksum(check))
    under_load(clients, "update", "--inplace", os.path.join(kvd, "kvd-1.1.so"))
    print("after 1.1:", version(check), checksum(check))
    print("check kvd-3:", ctl_run("update", "--check", os.path.join(kvd, "kvd-3.so")))
    print("kvd-3 in place:", ctl_run("update", "--inplace", os.path.join(kvd, "kvd-3.so")))
    print("after kvd-3:", version(check), checksum(check))
    if os.path.exists(os.path.join(kvd, "kvd-2.so")):
        under_load(clients, "update", os.path.join(kvd, "kvd-2.so"), "--inplace")
        print("after 2:", version(check), checksum(check),
              "TYPE", check.ask("TYPE", "key:1").decode())
    else:
        print("kvd-2 skipped: no kvd-2.so in", kvd)
    st = subprocess.run([ctl, "--control", sock, "status"], capture_output=True,
                        text=True).stdout
    for line in st.splitlines():
        if line.startswith("  #"):
            print("history:", line.strip())
    server.terminate()
    print("kvd exit status", server.wait())


main()
