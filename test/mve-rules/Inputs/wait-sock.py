"""wait-sock.py PATH: waits (up to 30 s) for a control socket to appear."""
import os, sys, time
end = time.time() + 30
while not os.path.exists(sys.argv[1]) and time.time() < end:
    time.sleep(0.01)
sys.exit(0 if os.path.exists(sys.argv[1]) else 1)
