#!/usr/bin/env python3
"""Prints a TCP port on 127.0.0.1 that was free a moment ago (tests bind it
right after; the kernel does not hand the same ephemeral port out again at
once)."""
import socket

s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
