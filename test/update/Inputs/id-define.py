"""Reads `mvedsua-run --list-state` output and prints `#define NAME 0x<id>ull`
for the version id on its first line ("version ID PATH")."""
import sys

# Read everything: closing the pipe early would kill the writer with SIGPIPE.
lines = sys.stdin.read().splitlines()
first = lines[0].split() if lines else []
if len(first) < 2 or first[0] != "version":
    sys.exit("id-define.py: no 'version ID' line in the input")
print("#define %s 0x%sull" % (sys.argv[1], first[1]))
