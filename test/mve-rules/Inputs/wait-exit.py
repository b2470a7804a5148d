"""wait-exit.py PIDFILE: waits (up to 30 s) for the process to end."""
import os, sys, time
pid = int(open(sys.argv[1]).read())
end = time.time() + 30
while time.time() < end:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
