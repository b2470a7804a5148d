"""wait-rolled-back.py CTL SOCK: waits (up to 30 s) until the last update was
rolled back; prints its outcome and the first line of the reason."""
import json, subprocess, sys, time
ctl, sock = sys.argv[1:3]
end = time.time() + 30
while time.time() < end:
    st = json.loads(subprocess.run([ctl, "--control", sock, "status", "--json"],
                                   capture_output=True, text=True).stdout)
    lu = st["last_update"] or {}
    if lu.get("outcome") == "rolled-back":
        print("rolled-back:", lu["reason"].splitlines()[0])
        sys.exit(0)
    time.sleep(0.05)
print("not rolled back:", st["stage"])
