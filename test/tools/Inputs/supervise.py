"""supervise.py SCENARIO RUN CTL APP SOCKET: drives mvedsua-run (RUN) serving
APP (built from service.c) with --control SOCKET, and prints what it observes,
one fact per line, for FileCheck. Scenarios:
  control     pid stability, socket mode, status, malformed requests, the wake
              signal, the uid check, SIGTERM forwarding and exit status
  hup         SIGHUP forwarding
  pdeathsig   the program gets SIGTERM when the supervisor is killed
  plain       status of a version built without the plugin
"""
import os
import signal
import socket
import stat
import subprocess
import sys
import time

scenario, run, ctl, app, sock = sys.argv[1:6]


def start():
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen([run, "--control", sock, app, "serve"],
                         stdout=subprocess.PIPE, text=True)
    ready = p.stdout.readline().split()
    fields = dict(kv.split("=") for kv in ready[1:])
    print("started:", ready[0])
    # The program's parent is the process we started: its pid is the service's.
    print("program's parent is the supervisor:", int(fields["ppid"]) == p.pid)
    for _ in range(200):  # the socket exists before the program starts
        if os.path.exists(sock):
            break
        time.sleep(0.01)
    return p, int(fields["pid"])


def ctl_out(*args):
    r = subprocess.run([ctl, "--control", sock] + list(args),
                       capture_output=True, text=True)
    return ("exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr)).rstrip("\n")


def raw(data, uid=None):
    """Sends raw bytes and returns the reply, as uid if given."""
    if uid is not None:
        rd, wr = os.pipe()
        if os.fork() == 0:
            os.close(rd)
            os.setuid(uid)
            os.write(wr, raw(data).encode())
            os._exit(0)
        os.close(wr)
        out = b""
        while chunk := os.read(rd, 4096):
            out += chunk
        os.wait()
        return out.decode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    s.close()
    return reply.decode()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def wait_for_status_version():
    for _ in range(200):
        out = ctl_out("status", "--json")
        if '"stage":"single-leader"' in out:
            return out
        time.sleep(0.01)
    return out


def control():
    p, program = start()
    print("socket mode: %o" % stat.S_IMODE(os.stat(sock).st_mode))
    print("status json:", wait_for_status_version())
    print("leader is the program:", ('"leader_pid":%d,' % program) in ctl_out("status", "--json"))
    print("supervisor pid reported:", ('"supervisor_pid":%d}' % p.pid) in ctl_out("status", "--json"))
    print("status text:", ctl_out("status"))
    print("garbage reply:", raw(b"\x01frobnicate \xff\n"))
    print("empty reply:", raw(b"\n"))
    print("no newline reply:", raw(b"status"))
    print("long reply:", raw(b"x" * 10000 + b"\n"))
    for _ in range(20):  # clients that hang up before the reply: no SIGPIPE
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)
        c.sendall(b"status --json\n")
        c.close()
    os.kill(program, signal.SIGRTMIN + 6)  # the wake signal: sets the flag only
    time.sleep(0.05)
    print("after garbage, hang-ups and wake, alive:", alive(program), p.poll() is None)
    print("status still answers:", ctl_out("status").splitlines()[2])
    if os.geteuid() == 0:
        os.chmod(sock, 0o666)  # let another uid reach the SO_PEERCRED check
        print("other uid:", raw(b"status\n", uid=65534))
    else:
        print("other uid: skipped: needs root")
    p.send_signal(signal.SIGTERM)
    print("program says:", p.stdout.read().strip())
    print("supervisor exit:", p.wait())
    print("socket removed:", not os.path.exists(sock))


def hup():
    p, program = start()
    p.send_signal(signal.SIGHUP)
    print("program says:", p.stdout.read().strip())
    print("supervisor exit:", p.wait())


def pdeathsig():
    p, program = start()
    p.kill()
    p.wait()
    print("program says:", p.stdout.read().strip())
    for _ in range(200):
        if not alive(program):
            break
        time.sleep(0.01)
    print("program ended with its supervisor:", not alive(program))


def plain():
    p, program = start()
    for _ in range(200):
        out = ctl_out("status", "--json")
        if "single-leader" in out:
            break
        time.sleep(0.01)
    print("status json:", out)
    print("status text:", ctl_out("status").splitlines()[2])
    print("update:", ctl_out("update", "--inplace", app).replace("\n", " "))
    p.send_signal(signal.SIGTERM)
    print("supervisor exit:", p.wait())


{"control": control, "hup": hup, "pdeathsig": pdeathsig, "plain": plain}[scenario]()
