"""main-kick.py RUN CTL DIR FROM TO: FROM.so under mvedsua-run, whose main
blocks in read(); `mvedsua-ctl update --inplace --timeout 2s TO.so`; prints
the program's first line, the update's outcome and, when it finished, the
new version's first line."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from supervised import Control  # noqa: E402

run, ctl, d, old, new = sys.argv[1:6]
sock = os.path.join(d, old + ".sock")
if os.path.exists(sock):
    os.unlink(sock)
server = subprocess.Popen([run, "--control", sock, os.path.join(d, old + ".so")],
                          stdout=subprocess.PIPE, text=True)
try:
    print("started:", server.stdout.readline().strip())
    out = Control(ctl, sock).ask("update", "--inplace", "--timeout", "2s", os.path.join(d, new + ".so"))
    print("update:", out.split(", pause")[0])
    if "finished" in out:
        print("then:", server.stdout.readline().strip())
finally:
    server.kill()
    server.wait()
