"""A memcached text-protocol client for the mcd tests (docs/mcd.md): raw
requests with their replies read back whole (a line, or VALUE blocks up to
END), and a way to start an mcd server (native or under mvedsua-run) and stop
it."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

RETRIEVAL = (b"get", b"gets", b"gat", b"gats")


class Closed(Exception):
    """The server closed the connection."""


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise Closed()
        self.buf += chunk

    def line(self):
        """One reply line, with its CRLF."""
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self, retrieval=False):
        """One whole reply: a line, or for a retrieval command every VALUE
        block and the END line (or the error line that replaced them)."""
        first = self.line()
        if not retrieval and not first.startswith(b"STAT "):
            return first
        out = first
        line = first
        while True:
            if line.startswith(b"VALUE "):
                n = int(line.split()[3])
                out += self.exact(n + 2)
            elif line.startswith(b"STAT "):
                pass
            else:
                return out
            line = self.line()
            out += line

    def request(self, cmd, data=None):
        """Sends one command (bytes without CRLF; data: a storage command's
        value) and returns its whole reply."""
        msg = cmd + b"\r\n"
        if data is not None:
            msg += data + b"\r\n"
        self.send(msg)
        word = cmd.split(b" ", 1)[0]
        return self.reply(retrieval=word in RETRIEVAL or word == b"stats")

    def closed(self, wait=5.0):
        """True when the server closes the connection (EOF) within wait s."""
        self.sock.settimeout(wait)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def stats(self, sub=b""):
        r = self.request(b"stats" + (b" " + sub if sub else b""))
        out = {}
        for l in r.split(b"\r\n"):
            p = l.split(b" ", 2)
            if len(p) == 3 and p[0] == b"STAT":
                out[p[1].decode()] = p[2].decode()
        return out


def values(reply):
    """The VALUE blocks of a retrieval reply: {key: (flags, data, cas or None)}."""
    out = {}
    pos = 0
    while reply.startswith(b"VALUE ", pos):
        eol = reply.index(b"\r\n", pos)
        head = reply[pos:eol].split()
        n = int(head[3])
        data = reply[eol + 2:eol + 2 + n]
        out[head[1].decode()] = (int(head[2]), data, int(head[4]) if len(head) > 4 else None)
        pos = eol + 2 + n + 2
    return out


class Server:
    """An mcd started on a free port: the native executable, or a version
    (.so) under mvedsua-run (with --control SOCK when `control` is given)."""

    def __init__(self, program, args=(), run=None, control=None, log=None):
        cmd = []
        if program.endswith(".so"):
            cmd = [run or os.environ.get("MVEDSUA_RUN", "mvedsua-run")]
            if control:
                cmd += ["--control", control]
        cmd += [program, "-p", "0"] + list(args)
        if not log:
            fd, log = tempfile.mkstemp(prefix="mcd-", suffix=".log")
            os.close(fd)
        self.log_path = log
        self.log = open(log, "w+b")
        # its own process group, so that kill() also reaches the program
        # mvedsua-run forked, whatever state it is in
        self.proc = subprocess.Popen(cmd, stderr=self.log, stdout=subprocess.DEVNULL,
                                     start_new_session=True)
        self.port = None
        end = time.time() + 30
        while time.time() < end and self.port is None:
            m = re.search(rb"listening on [^ ]*:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            self.kill()
            raise RuntimeError("mcd did not start: %r" % self.stderr())
        if control:
            while time.time() < end and not os.path.exists(control):
                time.sleep(0.02)

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def stop(self, timeout=20):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        try:  # nothing of the group may outlive the test
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return status

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
