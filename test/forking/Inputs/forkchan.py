"""forkchan.py RUN CTL V1.so V2.so WORK: an in-place update requested while
forkchan (Inputs/forkchan.c) forks with the request pending. The update must
be taken by the program mvedsua-run started, not by its child: the child
passes its update point without reading the supervisor's channel, the
parent takes the request at its own point, and status names the parent.
Prints one fact per line."""
import json
import os
import re
import signal
import subprocess
import sys
import time

run, ctl, v1, v2, work = sys.argv[1:6]
sock = os.path.join(work, "fc.sock")
errpath = os.path.join(work, "fc.err")


def stderr_text():
    with open(errpath) as f:
        return f.read()


def wait_text(pattern, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        m = re.search(pattern, stderr_text())
        if m:
            return m
        time.sleep(0.02)
    return None


server = subprocess.Popen([run, "--control", sock, v1], stderr=open(errpath, "w"))
try:
    ready = wait_text(r"forkchan 1: ready in (\d+)")
    parent = int(ready.group(1)) if ready else -1
    while not os.path.exists(sock):
        time.sleep(0.01)
    # The request and its wake-up signal: the program forks once the flag is
    # set, before its next update point.
    upd = subprocess.run([ctl, "--control", sock, "update", "--inplace",
                          "--timeout", "5s", v2],
                         capture_output=True, text=True, timeout=30)
    print("update: exit %d: %s" % (upd.returncode,
                                   (upd.stdout + upd.stderr).strip().split("\n")[0]
                                   .replace(v2, "V2")))
    print(wait_text(r"forkchan 1: child exited with status \d+").group(0)
          if wait_text(r"forkchan 1: child exited with status \d+", 5) else
          "child: still running")
    m = wait_text(r"forkchan 2: serving in (\d+)", 5)
    print("version 2 serves in:", "the parent" if m and int(m.group(1)) == parent
          else (m.group(1) if m else "nobody"))
    st = json.loads(subprocess.run([ctl, "--control", sock, "status", "--json"],
                                   capture_output=True, text=True).stdout)
    print("status: leader %s, version %s" % (
        "the parent" if st["leader_pid"] == parent else st["leader_pid"],
        os.path.basename(st["version"] or "")))
    print("updates taken at the child's point:",
          stderr_text().count("at update point 'child'"))
finally:
    server.send_signal(signal.SIGTERM)
    try:
        print("exit:", server.wait(timeout=10))
    except subprocess.TimeoutExpired:
        server.kill()
        print("exit: killed")
    # a child that took the update would still run: end it
    subprocess.run(["pkill", "-KILL", "-P", str(parent)], capture_output=True) if parent > 0 else None
