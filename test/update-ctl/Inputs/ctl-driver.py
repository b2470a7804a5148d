"""ctl-driver.py SCENARIO RUN CTL DIR PORT: drives mvedsua-run (RUN) serving
DIR/v1.so (built from evloop.c) on PORT with --control DIR/ctl.sock, updates
it with mvedsua-ctl (CTL) and prints what it observes, one fact per line, for
FileCheck. The versions in DIR: v2.so (same state, VERSION 2), slow.so (v2
that sleeps 2s in main before its update point), wide.so (the counter's type
changed, no transformer), plain.so (no plugin), notes.txt (not ELF).
Scenarios:
  wake      update while the program is blocked in epoll_wait(-1); status
            before and after; the client connected before the update is
            served by v2; an update the program asks for itself
  during    status during a slow update; a second update is refused
  timeout   the time limit expires while the new version is slow: failed,
            then the late completion is recorded
  read      a program blocked in read() (SA_RESTART) is not woken: the
            request times out and is withdrawn when the program gets there
  bad       bad requests, each refused with its error while v1 serves on
  check     update --check: accepted, refused (changed type), errors
  crash     the new version dies before its update point: the client is
            told, and the supervisor dies of the same signal
"""
import json
import os
import socket
import subprocess
import sys
import time

scenario, run, ctl, d, port = sys.argv[1:6]
port = int(port)
sock = os.path.join(d, "ctl.sock")


def start(extra=(), stdin=None):
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen([run, "--control", sock, os.path.join(d, "v1.so"),
                          str(port)] + list(extra), stdin=stdin,
                         stdout=subprocess.PIPE, text=True)
    print("started:", p.stdout.readline().strip())
    return p


def ctl_run(*args, user=None):
    cmd = [ctl, "--control", sock] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
               "--clear-groups"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    return "exit %d: %s" % (r.returncode, (r.stdout + r.stderr).strip())


def ctl_bg(*args):
    return subprocess.Popen([ctl, "--control", sock] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(p):
    out = p.communicate()[0]
    return "exit %d: %s" % (p.returncode, out.strip())


def status():
    r = subprocess.run([ctl, "--control", sock, "status", "--json"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def brief(st):
    """stage, version file, last outcome and the outcomes of the history."""
    last = st["last_update"]
    return "stage=%s version=%s last=%s history=%s" % (
        st["stage"], os.path.basename(st["version"]),
        last["outcome"] if last else None,
        ",".join(h["outcome"] for h in st["history"]) or "-")


def wait_for(pred, what, limit=60.0):
    t0 = time.time()
    while time.time() - t0 < limit:
        st = status()
        if pred(st):
            return st
        time.sleep(0.02)
    print("timed out waiting for", what)
    return status()


def raw(data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    return reply.decode().strip()


class Client:
    """A TCP client that stays connected across updates."""

    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.s.makefile("r")

    def ask(self, line="get"):
        self.s.sendall((line + "\n").encode())
        return self.f.readline().strip()


def stop(p):
    p.terminate()
    p.wait()


def so(name):
    return os.path.join(d, name)


def wake():
    p = start()
    c = Client()
    print("before:", c.ask(), "|", brief(status()))
    # No client traffic: the program sits in epoll_wait(-1).
    time.sleep(0.3)
    print("update:", ctl_run("update", "--inplace", so("v2.so"), "--timeout", "5s"))
    print("same client after:", c.ask())
    st = status()
    print("after:", brief(st))
    last = st["last_update"]
    print("last: by=%s from=%s to=%s mode=%s ids_equal=%s point=%s pause_ms=%s "
          "entries=%d" % (last["requested_by"], os.path.basename(last["from"]),
                          os.path.basename(last["to"]), last["mode"],
                          last["from_id"] == last["to_id"], last["point"],
                          isinstance(last["pause_ms"], float), last["entries"]))
    print("requested_at:", last["requested_at"])
    # The program asks for an update itself (mvedsua_request_update).
    print("self:", c.ask("self " + so("v1.so")))
    st = wait_for(lambda s: len(s["history"]) == 2, "the program's update")
    print("after self:", brief(st), "by=" + st["last_update"]["requested_by"])
    print("client:", c.ask())
    stop(p)


def during():
    p = start()
    c = Client()
    print("before:", c.ask())
    first = ctl_bg("update", "--inplace", so("slow.so"))
    st = wait_for(lambda s: s["stage"] == "updating", "stage updating")
    print("during:", brief(st))
    print("second:", ctl_run("update", "--inplace", so("v2.so")))
    print("status text during:", [l for l in subprocess.run(
        [ctl, "--control", sock, "status"], capture_output=True,
        text=True).stdout.splitlines() if l.startswith("stage")][0])
    print("first:", finish(first))
    print("after:", brief(status()))
    print("client:", c.ask())
    stop(p)


def timeout():
    p = start()
    c = Client()
    print("update:", ctl_run("update", so("slow.so"), "--timeout", "500ms",
                             "--inplace"))
    print("right after:", brief(status()))
    st = wait_for(lambda s: s["stage"] == "single-leader", "the late completion")
    print("later:", brief(st))
    print("reason:", st["last_update"]["reason"])
    print("client:", c.ask())
    stop(p)


def read_blocked():
    p = start(["--read"], stdin=subprocess.PIPE)
    print("update:", ctl_run("update", "--inplace", "--timeout", "1s", so("v2.so")))
    print("after timeout:", brief(status()))
    p.stdin.write("x")  # read() returns: the update point sees the withdrawal
    p.stdin.flush()
    time.sleep(0.3)
    print("withdrawn:", brief(status()))
    # Again, with the program brought to its update point by input.
    u = ctl_bg("update", "--inplace", "--timeout", "10s", so("v2.so"))
    wait_for(lambda s: s["stage"] == "updating", "stage updating")
    time.sleep(0.3)
    print("still waiting:", u.poll() is None)
    p.stdin.write("x")
    p.stdin.flush()
    print("second:", finish(u))
    print("after:", brief(status()))
    p.stdin.close()
    print("exit:", p.wait())


def bad():
    p = start()
    c = Client()
    print("before:", c.ask())
    cases = [
        ("missing", ["update", "--inplace", so("nope.so")]),
        ("not ELF", ["update", "--inplace", so("notes.txt")]),
        ("no registry", ["update", "--inplace", so("plain.so")]),
        ("writable", ["update", "--inplace", so("open.so")]),
        ("directory", ["update", "--inplace", d]),
        ("bad duration", ["update", "--inplace", "--timeout", "5x", so("v2.so")]),
        ("zero duration", ["update", "--inplace", "--timeout=0s", so("v2.so")]),
        ("retry in place", ["update", "--inplace", "--retry", "1", so("v2.so")]),
        ("bad retry", ["update", "--retry", "x", so("v2.so")]),
        ("rollback none", ["rollback"]),
        ("promote", ["promote"]),
        ("finish", ["finish"]),
        ("no file", ["update", "--inplace"]),
        ("two files", ["update", "--inplace", so("v2.so"), so("v1.so")]),
    ]
    for name, args in cases:
        print("%s: %s" % (name, ctl_run(*args)))
        print("  serves:", c.ask())
    for name, data in [("raw relative", b"update --inplace v2.so\n"),
                       ("raw bad duration", b"update --inplace --timeout 3 /x.so\n"),
                       ("raw retry in place", b"update --inplace --retry 1 /x.so\n"),
                       ("raw bad retry", b"update --retry 1x /x.so\n"),
                       ("raw rollback arg", b"rollback now\n"),
                       ("raw unknown option", b"update --now /x.so\n"),
                       ("garbage", b"\x00\xffupdate\x01\n")]:
        print("%s: %s" % (name, raw(data)))
        print("  serves:", c.ask())
    if os.geteuid() == 0:
        os.chmod(sock, 0o666)  # let another uid reach the SO_PEERCRED check
        print("other uid:", ctl_run("update", "--inplace", so("v2.so"), user=65534))
        os.chmod(sock, 0o600)
    else:
        print("other uid: skipped: needs root")
    print("  serves:", c.ask())
    print("status:", brief(status()))
    stop(p)


def check():
    p = start()
    c = Client()
    print("before:", c.ask())
    for name in ["v2.so", "wide.so", "v1.so", "plain.so", "nope.so"]:
        print("%s: %s" % (name, ctl_run("update", "--check", so(name))))
    print("check after file:", ctl_run("update", so("v2.so"), "--check",
                                       "--timeout", "10s"))
    print("serves:", c.ask(), "|", brief(status()))
    print("wide in place:", ctl_run("update", "--inplace", so("wide.so")))
    print("serves:", c.ask(), "|", brief(status()))
    stop(p)


def crash():
    p = start()
    print("update:", ctl_run("update", "--inplace", so("crash.so")))
    print("supervisor:", p.wait())


{"wake": wake, "during": during, "timeout": timeout, "read": read_blocked,
 "bad": bad, "check": check, "crash": crash}[scenario]()
