"""Drives Inputs/saver.c under mvedsua-run through a multi-version update
while the old version has a child process (a saver, like redis' BGSAVE).

  saver.py MODE MVEDSUA_RUN MVEDSUA_CTL WORK V1.so V2.so

MODE promote: the child lives 1.5 s; promote is asked while it runs and is
taken once the old version has reaped it; after the promotion (and finish,
for a program without threads) the new version forks and reaps a child of
its own. MODE timeout (update --timeout 2s): the child outlives
the update's time limit and promote fails, naming it; the old version goes on.
Prints one line per step and then the program's output."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from supervised import Control  # noqa: E402


def main():
    mode, run, ctl, work, v1, v2 = sys.argv[1:7]
    os.makedirs(work, exist_ok=True)
    sock = os.path.join(work, "ctl-%s.sock" % mode)
    out_path = os.path.join(work, "out-%s" % mode)
    out = open(out_path, "w")
    err = open(os.path.join(work, "err-%s" % mode), "w")
    prog = subprocess.Popen([run, "--control", sock, v1], stdin=subprocess.PIPE,
                            stdout=out, stderr=err)
    c = Control(ctl, sock)

    def output():
        return open(out_path).read()

    def wait_output(text, count=1, seconds=20):
        end = time.time() + seconds
        while output().count(text) < count and time.time() < end:
            time.sleep(0.05)
        return output().count(text) >= count

    def send(line):
        prog.stdin.write(line.encode() + b"\n")
        prog.stdin.flush()

    child = 0
    try:
        wait_output("saver: ready")
        limit = ["--timeout", "2s"] if mode == "timeout" else []
        rc, text = c.run("update", *limit, v2)
        print("update: exit %d: %s" % (rc, " ".join(text.split()[:5])))
        send("fork %d" % (1500 if mode == "promote" else 20000))
        wait_output("forked child")
        child = int(output().split("forked child ")[1].split()[0])
        rc, text = c.run("promote")
        reaped = "child reaped" in output()
        print("promote: exit %d: %s" % (rc, text.split(" (pid")[0]))
        print("child reaped before the promotion: %s" % ("yes" if reaped else "no"))
        st = c.status()
        print("status: stage %s, follower %s" % (st.get("stage"), "yes" if st.get("follower_pid") else "no"))
        if mode == "promote":
            if st.get("stage") == "updated-leader":
                rc, text = c.run("finish")
                print("finish: exit %d: %s" % (rc, text.split(" (pid")[0]))
            send("fork 100")
            print("the new version reaps its own child: %s" %
                  ("yes" if wait_output("child reaped", 2) else "no"))
        else:
            os.kill(child, signal.SIGKILL)
            print("the old version reaps its child: %s" %
                  ("yes" if wait_output("child reaped") else "no"))
        send("quit")
        print("exit status: %d" % prog.wait(30))
    finally:
        if prog.poll() is None:
            prog.kill()
        try:
            os.kill(child, signal.SIGKILL)
        except (OSError, TypeError):
            pass
    sys.stdout.write(output())


if __name__ == "__main__":
    main()
