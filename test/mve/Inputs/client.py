#!/usr/bin/env python3
"""client.py PORTFILE N: sends N lines to echo.so tcp, one at a time, and
checks each reply; then says quit. Loopback only; bounded in time."""
import os, socket, sys, time

port_file, n = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 20
while not (os.path.exists(port_file) and open(port_file).read().endswith("\n")):
    if time.time() > deadline:
        sys.exit("client: no port file")
    time.sleep(0.02)
port = int(open(port_file).read())
s = socket.create_connection(("127.0.0.1", port), timeout=20)
f = s.makefile("rb")
for i in range(n):
    s.sendall(b"line %d\n" % i)
    got = f.readline()
    if got != b"echo: line %d\n" % i:
        sys.exit("client: line %d: got %r" % (i, got))
s.sendall(b"quit\n")
print("client: %d replies correct" % n)
