"""kvd-rules.py RUN CTL KVD_DIR RULES_DIR WORK PORT: multi-version updates of
kvd under mvedsua-run with expected-difference rules (docs/rules.md), each
update first without its rules (rolled back by a divergence), then with them
(followed, then rolled back on request), with redis-cli and a RESP client:
  sett     kvd-1 -> kvd-2, SETT (the paper's running example)
  type     kvd-1 -> kvd-2, TYPE mapped to another unknown command (FTP-like)
  reorder  kvd-1 -> kvd-1-reorder, a new connection's two calls swapped
  connlog  kvd-1 -> kvd-1-connlog, a log file only the new version writes
  buggy    a rule with a bug: divergence, the report names the rule
  crash    a rule whose callback crashes: a rule error naming the rule
  reverse  kvd-1 -> kvd-2 promoted: a typed SETT while kvd-2 leads, without
           and with the %reverse rule (a server of its own each)
Prints one fact per line.
"""
import os
import socket
import subprocess
import sys
import time

run, ctl, kvd, rules, work = map(os.path.abspath, sys.argv[1:6])
port = sys.argv[6]
port = int(port)
sock = os.path.join(work, "kvd.sock")
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "lib"))
from resp import Conn  # noqa: E402
from supervised import Control  # noqa: E402


control = Control(ctl, sock)
status = control.status


def ctl_run(*args):
    return control.run(*args, timeout=120)


def cli(*args):
    r = subprocess.run(["redis-cli", "-p", str(port)] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def wait_rolled_back(seconds=30):
    return control.wait_for(
        lambda st: st["last_update"]["outcome"] == "rolled-back", seconds)


def following():
    """Still in the outdated-leader stage with a follower, after a
    round-trip that makes the idle leader look at its follower."""
    cli("PING")
    time.sleep(0.3)
    st = status()
    return st["stage"] == "outdated-leader" and bool(st["follower_pid"])


def lines_in(path, n, seconds=30):
    """Waits until `path` holds `n` lines (the follower, which writes them,
    may lag behind the leader on a loaded machine); returns them."""
    end = time.time() + seconds
    while True:
        lines = open(path).read().splitlines() if os.path.exists(path) else []
        if len(lines) >= n or time.time() > end:
            return lines
        time.sleep(0.05)


def update(name, version, rules_file=None):
    args = ["update"]
    if rules_file:
        args += ["--rules", rules_file]
    code, out = ctl_run(*(args + [os.path.join(kvd, version + ".so")]))
    print(name, "update:", code, out.split(",")[0])
    return code == 0


def rollback(name):
    code, out = ctl_run("rollback")
    print(name, "rollback on request:", code, out.split(":")[0])


def reason_lines(st):
    return st["last_update"]["reason"].splitlines()


def scenario_without(name, version, action):
    if not update(name, version):
        return
    print(name, "without rules, client:", action())
    st = wait_rolled_back()
    lines = reason_lines(st)
    print(name, "without rules:", st["last_update"]["outcome"], "|",
          lines[0] if lines else "")


def scenario_with(name, version, rules_file, action, before_rollback=None):
    if not update(name, version, rules_file):
        return
    print(name, "with rules, client:", action())
    print(name, "with rules, following:", following())
    print(name, "with rules, more traffic:", cli("SET", "k-" + name, "v"),
          cli("GET", "k-" + name), following())
    if before_rollback:
        before_rollback()
    rollback(name)


def main():
    log = open(os.path.join(work, "kvd.log"), "w")
    server = subprocess.Popen([run, "--control", sock,
                               os.path.join(kvd, "kvd-1.so"), "--port", str(port)],
                              stderr=log, cwd=work)
    for _ in range(1000):
        if os.path.exists(sock) and "listening" in open(log.name).read():
            break
        time.sleep(0.01)
    cli("SET", "key", "value")
    kvd12 = os.path.join(rules, "kvd-1-2.rules")

    sett = lambda: cli("SETT", "k", "string", "v")  # noqa: E731
    scenario_without("sett", "kvd-2", sett)
    scenario_with("sett", "kvd-2", kvd12, sett)

    typ = lambda: cli("TYPE", "key")  # noqa: E731
    scenario_without("type", "kvd-2", typ)
    scenario_with("type", "kvd-2", kvd12, typ)

    def connect():
        c = Conn(port)
        return c.ask("PING").decode()
    scenario_without("reorder", "kvd-1-reorder", connect)
    scenario_with("reorder", "kvd-1-reorder",
                  os.path.join(rules, "kvd-1-reorder.rules"), connect)

    logfile = os.path.join(work, "kvd-connections.log")
    scenario_without("connlog", "kvd-1-connlog", connect)
    print("connlog without rules, log file written:", os.path.exists(logfile))
    # The follower writes one line per connection made while it follows:
    # the PING client and each redis-cli, 5 in all.
    lines = []
    scenario_with("connlog", "kvd-1-connlog",
                  os.path.join(rules, "kvd-1-connlog.rules"), connect,
                  lambda: lines.extend(lines_in(logfile, 5)))
    print("connlog with rules, log file lines:", len(lines),
          set(l.split(" fd ")[0] for l in lines))

    if update("buggy", "kvd-2", os.path.join(here, "buggy.rules")):
        print("buggy client:", sett())
        st = wait_rolled_back()
        print("buggy outcome:", st["last_update"]["outcome"])
        for line in reason_lines(st):
            print("buggy reason:", line.strip())

    if update("crash", "kvd-2", os.path.join(here, "crash.rules")):
        print("crash client:", sett())
        st = wait_rolled_back()
        print("crash outcome:", st["last_update"]["outcome"])
        for line in reason_lines(st)[:3]:
            print("crash reason:", line.strip())

    # A rules file with an error never starts an update.
    bad = os.path.join(work, "bad.rules")
    open(bad, "w").write("raed(_,_,_) => nothing\n")
    code, out = ctl_run("update", "--rules", bad, os.path.join(kvd, "kvd-2.so"))
    print("bad rules:", code, out.replace(work, "WORK").replace("\n", " | "))
    print("after all:", status()["stage"], cli("GET", "key"))
    server.terminate()
    print("kvd exit status", server.wait())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def reverse(tag, rules_file):
    """kvd-1 -> kvd-2 promoted: kvd-2 leads, kvd-1 follows it. A typed SETT
    is a plain SET for kvd-1 with the %reverse rule; without it kvd-1
    answers it as unknown and the old follower is ended. A server of its
    own (the update ends with kvd-2 leading)."""
    global sock, port
    sock, port = os.path.join(work, tag + ".sock"), free_port()
    control.sock = sock
    log = open(os.path.join(work, tag + ".log"), "w")
    server = subprocess.Popen([run, "--control", sock,
                               os.path.join(kvd, "kvd-1.so"), "--port", str(port)],
                              stderr=log, cwd=work)
    for _ in range(1000):
        if os.path.exists(sock) and "listening" in open(log.name).read():
            break
        time.sleep(0.01)
    cli("SET", "key", "value")
    update(tag, "kvd-2", rules_file)
    code, out = ctl_run("promote")
    print(tag, "promote:", code, out.split("(")[0].strip())
    print(tag, "client:", cli("SETT", "kr", "string", "v"), cli("GET", "kr"))
    cli("PING")
    time.sleep(0.3)
    st = status()
    print(tag, "stage:", st["stage"], "follower", bool(st["follower_pid"]))
    if st["follower_pid"]:
        code, out = ctl_run("finish")
        print(tag, "finish:", code, out.split("(")[0].strip())
    else:
        for line in reason_lines(st)[:4]:
            print(tag, "reason:", line.strip())
    print(tag, "after:", status()["stage"], "GET kr", repr(cli("GET", "kr")),
          "TYPE kr", cli("TYPE", "kr"), "GET key", cli("GET", "key"))
    server.terminate()
    print(tag, "kvd exit status", server.wait())


main()
reverse("reverse-without", None)
reverse("reverse-with", os.path.join(rules, "kvd-1-2.rules"))
