"""A small RESP2 client for the test drivers and benchmarks that talk to kvd
(and any redis-protocol server): request encoding, one connection with
buffered replies, and a checksum over a key range."""
import hashlib
import socket


def resp(*args):
    """One request in RESP2: an array of bulk strings."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    """A connection that reads replies one at a time: a bulk string's data
    (None for nil), or any other reply's line (+OK, :1, -ERR ...)."""

    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(1 << 16)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self.line()
        if line[:1] != b"$":
            return line
        n = int(line[1:])
        if n < 0:
            return None
        while len(self.buf) < n + 2:
            data = self.s.recv(1 << 16)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def ask(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()

    def pipeline(self, commands):
        self.s.sendall(b"".join(resp(*c) for c in commands))
        return [self.reply() for _ in commands]


def checksum(c, keys, value=lambda i: b"value-%d" % (i * 7)):
    """GETs key:1..key:KEYS pipelined on one connection: how many hold
    value(i), and an md5 of all replies."""
    c.s.sendall(b"".join(resp("GET", "key:%d" % i) for i in range(1, keys + 1)))
    h, missing = hashlib.md5(), 0
    for i in range(1, keys + 1):
        v = c.reply()
        missing += v != value(i)
        h.update(v or b"<nil>")
    return "%d of %d keys intact, md5 %s" % (keys - missing, keys, h.hexdigest()[:12])
