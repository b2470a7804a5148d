"""expect-exit.py CODE COMMAND...: runs COMMAND (stdout/stderr inherited) and
succeeds only if it exits with CODE; CODE may be "signal:N" for death by
signal N. Lit's `not` accepts any failure; exit codes are part of the tools'
interface, so the tests check them exactly."""
import subprocess
import sys

want = sys.argv[1]
rc = subprocess.call(sys.argv[2:])
got = "signal:%d" % -rc if rc < 0 else str(rc)
if got != want:
    sys.stderr.write("expect-exit: expected exit %s, got %s\n" % (want, got))
    sys.exit(1)
