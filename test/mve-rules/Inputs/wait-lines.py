"""wait-lines.py FILE N: waits (up to 30 s) until FILE holds N lines."""
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
end = time.time() + 30
while time.time() < end:
    if os.path.exists(path) and len(open(path).read().splitlines()) >= n:
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
