"""What the kvd test drivers share about a service under mvedsua-run: its
control socket through mvedsua-ctl (requests, the status, waiting for a state)
and the outcome of a redis-benchmark run against it."""
import json
import subprocess
import time


class Control:
    """mvedsua-ctl --control SOCK, one request per call."""

    def __init__(self, ctl, sock):
        self.ctl, self.sock = ctl, sock

    def run(self, *args, timeout=None):
        """(exit status, stdout + stderr stripped)."""
        r = subprocess.run([self.ctl, "--control", self.sock] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()

    def ask(self, *args):
        """The request's outcome as one line: "exit N: OUTPUT"."""
        return "exit %d: %s" % self.run(*args)

    def status(self):
        r = subprocess.run([self.ctl, "--control", self.sock, "status", "--json"],
                           capture_output=True, text=True)
        return json.loads(r.stdout)

    def wait_for(self, pred, seconds=20):
        """Polls the status until pred(status) holds (the supervisor wakes
        an idle leader to report); the last status either way."""
        end = time.time() + seconds
        while time.time() < end:
            st = self.status()
            if pred(st):
                return st
            time.sleep(0.1)
        return self.status()


def bench_result(b):
    """Waits for a redis-benchmark Popen (stdout piped, stderr merged):
    "exit N, E error lines"."""
    out = b.communicate()[0].replace("\r", "\n")
    errors = [l for l in out.splitlines() if "rror" in l or "ERR" in l]
    return "exit %d, %d error lines" % (b.returncode, len(errors))
