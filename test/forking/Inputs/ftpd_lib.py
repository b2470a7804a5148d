"""What the ftpd drivers share: the server under test (native or under
mvedsua-run), its session children, and the real clients: curl, lftp, and
Python's ftplib for STOU (neither curl nor lftp can send a data command they
do not know)."""
import ftplib
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import supervised  # noqa: E402

USER, PASSWORD = "bob", "secret"
TIMEOUT = 20  # every client call gives up after this long: a hung server fails a test, never stalls it


def md5(data):
    return hashlib.md5(data).hexdigest()


def md5_file(path):
    with open(path, "rb") as f:
        return md5(f.read())


def payload(seed, size):
    return random.Random(seed).randbytes(size)


def make_root(root):
    """The tree every session sees as /: pub/hello.txt, big.bin (1 MiB), load/."""
    os.makedirs(os.path.join(root, "pub"), exist_ok=True)
    os.makedirs(os.path.join(root, "load"), exist_ok=True)
    with open(os.path.join(root, "pub", "hello.txt"), "w") as f:
        f.write("hello from ftpd\n")
    big = payload(1, 1 << 20)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    return md5(big)


def children(pid):
    """The pids of pid's children (every thread's)."""
    out = set()
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.update(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def socket_inode(local_port, remote_port):
    """The inode of the TCP socket 127.0.0.1:local_port <-> :remote_port."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if (int(cols[1].split(":")[1], 16) == local_port and
                    int(cols[2].split(":")[1], 16) == remote_port):
                return cols[9]
    return None


def session_process(master, port, session):
    """The child of `master` that serves `session` (it holds the server's
    end of the control connection): found by the socket, not by which
    children appeared, so sessions forked meanwhile for other clients do
    not confuse it."""
    inode = socket_inode(port, session.ftp.sock.getsockname()[1])
    target = "socket:[%s]" % inode
    for pid in children(master):
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                    return pid
        except OSError:
            pass
    return None


def maps_of(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return f.read()
    except OSError:
        return ""


class Server:
    """ftpd on --port 0 (the kernel's free port, read from its one line),
    --root ROOT, --user bob:secret; `cmd` is the executable or
    [mvedsua-run, --control, SOCK, X.so]."""

    def __init__(self, cmd, root, log):
        self.log = log
        self.proc = subprocess.Popen(
            cmd + ["--root", root, "--port", "0", "--user", USER + ":" + PASSWORD],
            stderr=open(log, "w"), start_new_session=False)
        m = self.wait_log(r"ftpd: listening on 127\.0\.0\.1:(\d+)")
        if not m:
            self.kill()
            raise RuntimeError("ftpd did not start: " + self.text())
        self.port = int(m.group(1))

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_log(self, pattern, seconds=TIMEOUT):
        end = time.time() + seconds
        while time.time() < end:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                return re.search(pattern, self.text())
            time.sleep(0.02)
        return None

    def stop(self):
        """SIGTERM; the exit status (or "killed" when it did not end)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return "killed"

    def kill(self):
        """Last resort: the server and whatever it forked."""
        pids = [self.proc.pid]
        i = 0
        while i < len(pids):
            pids.extend(children(pids[i]))
            i += 1
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()


def curl(port, path, *args, user=None):
    """curl ftp://127.0.0.1:PORT/PATH ARGS: (exit status, stdout bytes,
    the greeting's version or None)."""
    cmd = ["curl", "-sS", "-v", "--max-time", str(TIMEOUT)]
    if user:
        cmd += ["-u", user]
    cmd += list(args) + ["ftp://127.0.0.1:%d/%s" % (port, path)]
    r = subprocess.run(cmd, capture_output=True)
    err = r.stderr.decode(errors="replace")
    m = re.search(r"< 220 ftpd (\d+) ready", err)
    return r.returncode, r.stdout, int(m.group(1)) if m else None


def lftp(port, commands, user=USER + "," + PASSWORD):
    """One lftp session running `commands` (a list); its output, stripped."""
    script = "; ".join(["set ftp:ssl-allow no", "set net:max-retries 1",
                        "set net:timeout %d" % TIMEOUT, "set cmd:fail-exit yes",
                        "open -u %s -p %d 127.0.0.1" % (user, port)] + commands)
    r = subprocess.run(["lftp", "-c", script], capture_output=True, text=True,
                       timeout=TIMEOUT * 3)
    return r.returncode, (r.stdout + r.stderr).strip()


class Session:
    """One control connection through ftplib, logged in."""

    def __init__(self, port, user=USER, password=PASSWORD):
        self.ftp = ftplib.FTP()
        self.ftp.connect("127.0.0.1", port, timeout=TIMEOUT)
        self.greeting = self.ftp.getwelcome()
        self.ftp.login(user, password)

    def cmd(self, line):
        """The reply to one command, errors included, as text."""
        try:
            return self.ftp.sendcmd(line)
        except ftplib.Error as e:
            return str(e)

    def retr_md5(self, path):
        data = bytearray()
        self.ftp.retrbinary("RETR " + path, data.extend)
        return md5(bytes(data))

    def store(self, verb, data):
        """STOR/STOU/APPE with PASV: (the 1xx or error reply, the final one)."""
        host, port = ftplib.parse227(self.cmd("PASV"))
        conn = socket.create_connection((host, port), timeout=TIMEOUT)
        try:
            first = self.ftp.sendcmd(verb)
        except ftplib.Error as e:
            conn.close()
            return str(e), None
        conn.sendall(data)
        conn.close()
        return first, self.ftp.voidresp()

    def quit(self):
        try:
            return self.ftp.quit()
        except (ftplib.Error, OSError, EOFError) as e:
            return "quit: %s" % (type(e).__name__ if isinstance(e, EOFError) else e)


class Load(threading.Thread):
    """A loop of curl sessions against the server: a download of big.bin and
    an upload of a fresh payload (load/up-N.bin), each checked byte for byte
    (the upload on disk once curl has seen 226). Counts the sessions, the
    errors and the greetings' versions."""

    def __init__(self, port, root, big_md5):
        super().__init__(daemon=True)
        self.port, self.root, self.big_md5 = port, root, big_md5
        self.stop_event = threading.Event()
        self.rounds = 0
        self.sessions = 0
        self.errors = []
        self.versions = {}
        self.lock = threading.Lock()

    def note(self, rc, version, ok, what):
        with self.lock:
            self.sessions += 1
            if version:
                self.versions[version] = self.versions.get(version, 0) + 1
            if rc != 0 or not ok:
                self.errors.append("%s: curl exit %d, intact %s" % (what, rc, ok))

    def run(self):
        i = 0
        while not self.stop_event.is_set():
            rc, out, v = curl(self.port, "big.bin")
            self.note(rc, v, md5(out) == self.big_md5, "download %d" % i)
            data = payload(1000 + i, 65536 + i)
            src = os.path.join(self.root, "..", "up-src.bin")
            with open(src, "wb") as f:
                f.write(data)
            name = "load/up-%d.bin" % i
            rc, _, v = curl(self.port, name, "-T", src,
                            user=USER + ":" + PASSWORD)
            dst = os.path.join(self.root, name)
            self.note(rc, v, os.path.exists(dst) and md5_file(dst) == md5(data),
                      "upload %d" % i)
            i += 1
            with self.lock:
                self.rounds = i

    def wait_rounds(self, n, seconds=60):
        """Until `n` more rounds have run (an event, not a duration)."""
        with self.lock:
            target = self.rounds + n
        end = time.time() + seconds
        while time.time() < end and self.is_alive():
            with self.lock:
                if self.rounds >= target:
                    return True
            time.sleep(0.02)
        return False

    def wait_version(self, version, seconds=60):
        end = time.time() + seconds
        while time.time() < end and self.is_alive():
            with self.lock:
                if self.versions.get(version):
                    return True
            time.sleep(0.02)
        return False

    def finish(self):
        self.stop_event.set()
        self.join(TIMEOUT * 3)
        return "%d sessions, %d errors%s, versions seen %s" % (
            self.sessions, len(self.errors),
            (" (" + "; ".join(self.errors[:3]) + ")") if self.errors else "",
            " ".join("v%d" % v for v in sorted(self.versions)))


class Control(supervised.Control):
    """test/lib/supervised.py's client; ask() keeps the reply's first line
    (the drivers print one fact per line), and no request hangs a test."""

    def run(self, *args, timeout=120):
        return super().run(*args, timeout=timeout)

    def ask(self, *args):
        rc, out = self.run(*args)
        return "exit %d: %s" % (rc, out.split("\n")[0])
