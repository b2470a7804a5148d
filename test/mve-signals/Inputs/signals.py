"""signals.py RUN CTL V1 V2 WORK PORT SCENARIO: signals sent to the service
(the supervisor, which passes them to the leader) while a multi-version
update of sigsrv (Inputs/sigsrv.c) runs, under client load.

  stages     v1 -> v2 through every stage: SIGUSR1, SIGHUP (reload in the
             loop), SIGUSR2 (reload inside the handler) and SIGCHLD (a
             child the leader forks) while the old version leads, again
             after promotion, and once v2 runs alone; then SIGTERM.
  term       SIGTERM while the old version leads (outdated-leader): the
             service ends cleanly, its status passed through.
  quit       the same with SIGQUIT, whose handler calls exit(6) itself.
  diverge    SIGHUP while the old version leads, for a leader run with
             MVEDSUA_MVE_SIGNALS=0 (signals asynchronous, as before): the
             follower diverges and is rolled back.
With SIGNALS_RULES=FILE the update is made with these rules loaded.
Prints one fact per line.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

run, ctl, v1, v2, work, port, scenario = sys.argv[1:8]
port = int(port)
sock = os.path.join(work, "sigsrv.sock")
config = os.path.join(work, "sigsrv.conf")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from supervised import Control  # noqa: E402

control = Control(ctl, sock)


def set_config(prefix):
    tmp = config + ".tmp"
    with open(tmp, "w") as f:
        f.write(prefix + "\n")
    os.rename(tmp, config)


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("r")

    def ask(self, cmd):
        self.s.sendall((cmd + "\n").encode())
        return self.f.readline().strip()


def wait_reply(conn, cmd, pred, seconds=20):
    end = time.time() + seconds
    r = conn.ask(cmd)
    while not pred(r) and time.time() < end:
        time.sleep(0.02)
        r = conn.ask(cmd)
    return r


class Load:
    """Clients asking "get" in a loop: each reply is PREFIX N with N the
    connection's count and PREFIX one of the configurations in the order they
    were written (never an older one after a newer one)."""

    def __init__(self, prefixes, n=2):
        self.prefixes, self.stop, self.bad = prefixes, False, []
        self.counts = [0] * n
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def client(self, i):
        try:
            c = Conn()
            seen = 0
            while not self.stop:
                r = c.ask("get").split()
                self.counts[i] += 1
                if len(r) != 2 or r[0] not in self.prefixes or int(r[1]) != self.counts[i] \
                        or self.prefixes.index(r[0]) < seen:
                    self.bad.append(" ".join(r))
                    return
                seen = self.prefixes.index(r[0])
                time.sleep(0.002)
        except Exception as e:  # noqa: BLE001
            self.bad.append(repr(e))

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()
        return "%s, %s" % ("replies all correct" if not self.bad else "bad: %s" % self.bad[:3],
                           "every client served" if all(self.counts) else "a client got nothing")


servers, children = [], []


def start(env=None):
    log = open(os.path.join(work, "sigsrv-%s.err" % scenario), "w")
    server = subprocess.Popen([run, "--control", sock, v1, str(port), config],
                              stderr=log, env=env)
    servers.append(server)
    for _ in range(1000):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.01)
    return server, log.name


def send(server, sig):
    os.kill(server.pid, sig)


def stage(st):
    lu = st["last_update"] or {}
    return "stage %s, outcome %s" % (st["stage"], lu.get("outcome"))


def update():
    rules = ["--rules", os.environ["SIGNALS_RULES"]] if os.environ.get("SIGNALS_RULES") else []
    code, out = control.run("update", *rules, v2, timeout=60)
    print("update: exit %d: %s" % (code, out.split("\n")[0][:40]))


def signals_round(tag, server, c, prefix, usr2_prefix, usr1_before):
    """SIGUSR1 twice, SIGHUP (loop reload), SIGUSR2 (reload in the handler),
    a child's SIGCHLD, each waited for in the replies."""
    for k in (1, 2):
        send(server, signal.SIGUSR1)
        print("%s usr1: %s" % (tag, wait_reply(c, "usr1", lambda r: r == "usr1 %d" % (usr1_before + k))))
    set_config(prefix)
    send(server, signal.SIGHUP)
    print("%s hup: %s" % (tag, wait_reply(c, "get", lambda r: r.startswith(prefix + " ")).split()[0]))
    set_config(usr2_prefix)
    send(server, signal.SIGUSR2)
    print("%s usr2: %s" % (tag, wait_reply(c, "get", lambda r: r.startswith(usr2_prefix + " ")).split()[0]))
    reaped = int(c.ask("chld").split()[1])
    print("%s fork: %s" % (tag, c.ask("fork")))
    print("%s chld: %s" % (tag, wait_reply(c, "chld", lambda r: r.startswith("reaped %d " % (reaped + 1)))
                           .replace("reaped %d" % (reaped + 1), "reaped one more")))
    child = int(c.ask("forkwait").split()[1])
    children.append(child)
    os.kill(child, signal.SIGTERM)  # at once: the child may not have run yet
    print("%s forkwait: %s" % (tag, wait_reply(c, "chld", lambda r: r.startswith("reaped %d " % (reaped + 2)))
                               .replace("reaped %d" % (reaped + 2), "reaped one more")))
    alarms = int(c.ask("alarms").split()[1])
    print("%s alarm: %s" % (tag, c.ask("alarm")))
    print("%s alarms: %s" % (tag, wait_reply(c, "alarms", lambda r: r == "alarms %d" % (alarms + 1))
                             .replace("alarms %d" % (alarms + 1), "one more")))


def stages():
    prefixes = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
    set_config("alpha")
    server, err = start()
    c = Conn()
    load = Load(prefixes)
    time.sleep(0.2)
    update()
    print("following:", stage(control.status()))
    signals_round("outdated", server, c, "beta", "gamma", 0)
    st = control.status()
    print("after the signals:", stage(st), "follower", "alive" if st["follower_pid"] else "gone")
    code, out = control.run("promote", timeout=60)
    print("promote: exit %d" % code)
    signals_round("promoted", server, c, "delta", "epsilon", 2)
    st = control.status()
    print("after the signals:", stage(st), "follower", "alive" if st["follower_pid"] else "gone")
    code, out = control.run("finish", timeout=60)
    print("finish: exit %d" % code)
    st = control.wait_for(lambda s: s["stage"] == "single-leader")
    print("finished:", stage(st))
    print("version:", c.ask("version"))
    signals_round("alone", server, c, "zeta", "eta", 4)
    time.sleep(0.1)
    print("alarms in the end:", c.ask("alarms"))
    print("load:", load.finish())
    print("reloads:", c.ask("reloads"))
    send(server, signal.SIGTERM)
    print("exit:", server.wait(timeout=30))
    text = open(err).read()
    print("diverged:", "diverged" in text or "rolled back" in text)
    print(text.count("stops after"), "end line:", [l for l in text.splitlines() if "stops after" in l])


def term(sig=signal.SIGTERM):
    set_config("alpha")
    server, err = start()
    c = Conn()
    load = Load(["alpha", "beta"])
    time.sleep(0.2)
    update()
    time.sleep(0.3)  # served by the old version, followed by the new one
    send(server, signal.SIGUSR1)
    print("usr1:", wait_reply(c, "usr1", lambda r: r == "usr1 1"))
    print("during:", stage(control.status()))
    print("load:", load.finish())
    send(server, sig)
    print("exit:", server.wait(timeout=30))
    text = open(err).read()
    print("stop lines:", [l for l in text.splitlines() if "stops after" in l or "quits after" in l])
    print("follower:", [l.split(": ", 1)[1].split(" after")[0] for l in text.splitlines()
                        if "mvedsua: follower" in l and "ended" in l])
    print("diverged:", "diverged" in text or "rolled back" in text)


def diverge():
    set_config("alpha")
    env = dict(os.environ, MVEDSUA_MVE_SIGNALS="0")
    server, err = start(env)
    c = Conn()
    update()
    set_config("beta")
    send(server, signal.SIGHUP)
    print("hup:", wait_reply(c, "get", lambda r: r.startswith("beta ")).split()[0])
    st = control.wait_for(lambda s: s["stage"] == "single-leader")
    print("after:", stage(st))
    print("reason:", (st["last_update"] or {}).get("reason", "").split("\n")[0])
    send(server, signal.SIGTERM)
    print("exit:", server.wait(timeout=30))


try:
    {"stages": stages, "term": term, "diverge": diverge,
     "quit": lambda: term(signal.SIGQUIT)}[scenario]()
finally:  # a failed run leaves no server (nor a child stuck in pause) behind
    for child in children:
        try:  # still ours (a child reaped long ago may have a new owner)
            if v1.encode() in open("/proc/%d/cmdline" % child, "rb").read():
                os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    for server in servers:
        if server.poll() is None:
            server.kill()
            server.wait()
