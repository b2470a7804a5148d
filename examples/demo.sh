#!/usr/bin/env bash
# examples/demo.sh BUILD_DIR: the main job, on the bundled kvd example.
#
# Starts kvd-1 under the mvedsua supervisor, fills it through redis-cli, puts
# it under a real redis-benchmark load, shows what the supervisor and the
# state registry say, updates it live when the build supports it, checks that
# every key survived, and tells the story with timestamps.
set -euo pipefail
build=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kvd=$build/examples/kvd
run=$build/bin/mvedsua-run
ctl=$build/bin/mvedsua-ctl
keys=${DEMO_KEYS:-100000}

work=$(mktemp -d "${TMPDIR:-/tmp}/mvedsua-demo.XXXXXX")
sock=$work/kvd.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "${DEMO_KEEP:-}" ] && echo "demo: files kept in $work" || rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s.%N)
stamp() { printf '[%6.2fs] ' "$(echo "$(date +%s.%N) - $t0" | bc)"; }
story() { stamp; printf '%s\n' "$*"; }
cli() { redis-cli -p "$port" "$@"; }

story "starting kvd-1 under the supervisor: mvedsua-run --control $sock kvd-1.so --port $port"
"$run" --control "$sock" "$kvd/kvd-1.so" --port "$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening" "$work/server.log" 2>/dev/null && [ -S "$sock" ] && break
  sleep 0.05
done
grep -q "listening" "$work/server.log" || { cat "$work/server.log"; exit 1; }
story "supervisor pid $pid; status:"
"$ctl" --control "$sock" status | sed 's/^/           /'

story "filling it with $keys keys (redis-cli --pipe)"
seq 1 "$keys" | awk '{ printf "SET key:%d value-%d\r\n", $1, $1 * 7 }' |
  redis-cli -p "$port" --pipe | tail -1 | sed 's/^/           /'
story "DBSIZE = $(cli dbsize)"
sample() { seq 1 $((keys / 2000 > 0 ? keys / 2000 : 1)) "$keys" | sed 's/^/GET key:/' | cli | md5sum | cut -c1-16; }
sum_before=$(sample)
story "checksum of a 2000-key sample: $sum_before"

story "what an update would migrate (mvedsua-run --list-state kvd-1.so):"
"$run" --list-state "$kvd/kvd-1.so" | grep -E '^(version|module|  global|  static)' | sed 's/^/           /'

# The probe: 4 clients sending GETs back to back until $work/stop appears,
# each request timed. It then reads the moments written to $work/events
# ("NAME EPOCH" lines) and prints the slowest request before the update,
# during it (request to finish) and after, with the count of each.
cat > "$work/probe.py" <<'PROBE'
import os, socket, sys, threading, time
port, work = int(sys.argv[1]), sys.argv[2]
req, spans, errors = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n", [], []
def run():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while not os.path.exists(os.path.join(work, "stop")):
        t = time.time()
        s.sendall(req)
        buf = b""
        while buf.count(b"\r\n") < 2:
            data = s.recv(4096)
            if not data:
                errors.append("connection closed")
                return
            buf += data
        if buf != b"$7\r\nvalue-7\r\n":
            errors.append(repr(buf))
        spans.append((t, time.time()))
ts = [threading.Thread(target=run) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
ev = dict(l.split() for l in open(os.path.join(work, "events")))
t0, t1 = float(ev["requested"]), float(ev["finished"])
def part(name, keep):
    lat = [b - a for a, b in spans if keep(a, b)]
    print("           %-7s %6d requests, slowest %6.1f ms" % (name, len(lat), max(lat, default=0) * 1000))
part("before", lambda a, b: b < t0)
part("during", lambda a, b: b >= t0 and a <= t1)
part("after", lambda a, b: a > t1)
print("           wrong or failed replies: %d%s" % (len(errors), (": " + errors[0]) if errors else ""))
PROBE
mark() { echo "$1 $(date +%s.%N)" >> "$work/events"; }
status_line() {
  "$ctl" --control "$sock" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
log = s.get("log") or {}
print("           stage %s, leader %s, follower %s, version %s, log backlog %s bytes (peak %s)" % (
    s["stage"], s["leader_pid"], s["follower_pid"] or "none", s["version"].rsplit("/", 1)[-1],
    log.get("backlog_bytes", 0), log.get("peak_backlog_bytes", 0)))'
}

story "client load for the whole update: 4 latency probes (GET, each timed) + redis-benchmark -c 20 -n 100000 -t get,set"
python3 "$work/probe.py" "$port" "$work" > "$work/probe.out" &
probe=$!
redis-benchmark -p "$port" -q -c 20 -n 100000 -t get,set > "$work/bench.out" 2>&1 &
benchpid=$!
sleep 1

# A multi-version update: the follower forked at an update point applies it
# (every entry transformed to kvd-2's typed values) while kvd-1 keeps
# serving, replays kvd-1's system calls and is checked against them live;
# the rules say what differs on purpose (kvd-2's new commands).
story "multi-version update with its rules: mvedsua-ctl update --rules kvd-1-2.rules kvd-2.so"
mark requested
"$ctl" --control "$sock" update --rules "$here/kvd/rules/kvd-1-2.rules" "$kvd/kvd-2.so" | sed 's/^/           /'
status_line
story "both versions run; kvd-1 answers, kvd-2 follows: GET key:7 = $(cli get key:7)"
story "promote: kvd-2 leads, kvd-1 follows it and checks it (mvedsua-ctl promote)"
"$ctl" --control "$sock" promote | sed 's/^/           /'
status_line
# kvd-2's typed SET, sent inline: kvd-1 (following) gets it as a plain SET
# through the rules' reverse section, so both store it and agree.
inline() {
  python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode() + b"\r\n")
print(s.makefile("rb").readline().decode().strip())' "$port" "$1"
}
story "kvd-2 answers now: SETT greeting string hello = $(inline 'SETT greeting string hello'), GET greeting = $(cli get greeting), GET key:7 = $(cli get key:7)"
story "finish: kvd-1 ends, kvd-2 runs alone (mvedsua-ctl finish)"
"$ctl" --control "$sock" finish | sed 's/^/           /'
mark finished
status_line
story "kvd-2's new command: TYPE greeting = $(cli type greeting)"
sleep 1
touch "$work/stop"
wait "$probe"
wait "$benchpid" || { story "ERROR: redis-benchmark failed"; cat "$work/bench.out"; exit 1; }
story "what the clients saw (latency probes):"
cat "$work/probe.out"
grep -q "wrong or failed replies: 0$" "$work/probe.out" || { story "ERROR: a client saw a wrong reply"; exit 1; }
tr '\r' '\n' < "$work/bench.out" | grep -E 'requests per second' | sed 's/^/           redis-benchmark: /'
if tr '\r' '\n' < "$work/bench.out" | grep -qiE 'error|ERR'; then
  story "ERROR: redis-benchmark saw errors"; exit 1
fi
story "redis-benchmark and the probes saw no error; history:"
"$ctl" --control "$sock" status | sed -n '/^history/,$p' | sed 's/^/           /'

# The next update has a bug: kvd-3-crash dies on TYPE. The follower takes
# the crash; the service never does.
story "a bad update: mvedsua-ctl update kvd-3-crash.so (crashes on TYPE)"
"$ctl" --control "$sock" update "$kvd/kvd-3-crash.so" | sed 's/^/           /'
status_line
story "a client sends TYPE key:1: kvd-2 answers it, the follower's new code crashes"
cli type key:1 | sed 's/^/           client got: /'
for _ in $(seq 50); do
  "$ctl" --control "$sock" status --json | grep -q '"stage": *"single-leader"' && break
  sleep 0.1
done
"$ctl" --control "$sock" status --json | python3 -c '
import json, sys
u = json.load(sys.stdin)["last_update"]
print("           %s %s update: %s" % (u["outcome"], u["mode"], u["reason"].splitlines()[0]))'
status_line
story "still kvd-2 and serving: GET key:7 = $(cli get key:7), PING = $(cli ping)"

sum_after=$(sample)
story "DBSIZE = $(cli dbsize); checksum of the same sample: $sum_after"
[ "$sum_before" = "$sum_after" ] || { story "ERROR: keys changed"; exit 1; }

story "stopping: SIGTERM to the supervisor is forwarded to the program"
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e; pid=
story "the service exited with status $rc"
story "read more: README.md, docs/updates.md, docs/mve.md, docs/runtime.md, docs/kvd.md, bench/results/summary.md"
