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
  rm -rf "$work"
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

story "client load: redis-benchmark -c 20 -n 200000 -t get,set -P 16 (its own keys)"
redis-benchmark -p "$port" -q -c 20 -n 200000 -t get,set -P 16 2>&1 | tr '\r' '\n' |
  grep -E 'requests per second' | sed 's/^/           /'

if "$ctl" --help | grep -q '^  update'; then
  # The probe: 4 clients sending GETs back to back for 3 s, each request
  # timed. Afterwards it reads when the update was requested and answered
  # (update.window) and prints the slowest request that overlapped it, and the
  # slowest of the others.
  cat > "$work/probe.py" <<'EOF'
import socket, sys, threading, time
port, window = int(sys.argv[1]), sys.argv[2]
req, spans, start = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n", [], time.time()
def run():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while time.time() - start < 3:
        t = time.time()
        s.sendall(req)
        buf = b""
        while buf.count(b"\r\n") < 2:
            buf += s.recv(4096)
        spans.append((t, time.time()))
ts = [threading.Thread(target=run) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
t0, t1 = map(float, open(window).read().split())
hit = [b - a for a, b in spans if b >= t0 and a <= t1]
rest = [b - a for a, b in spans if not (b >= t0 and a <= t1)]
print("%.1f ms (%d requests overlapped the update; the slowest of the other %d: %.1f ms)"
      % (max(hit, default=0) * 1000, len(hit), len(rest), max(rest, default=0) * 1000))
EOF
  story "clients during the update: 4 latency probes + redis-benchmark -c 20 -n 100000 -t get,set"
  python3 "$work/probe.py" "$port" "$work/update.window" > "$work/probe.out" &
  probe=$!
  redis-benchmark -p "$port" -q -c 20 -n 100000 -t get,set > "$work/bench.out" 2>&1 &
  benchpid=$!
  sleep 1
  story "updating live: mvedsua-ctl update --inplace kvd-1.1.so"
  t_req=$(date +%s.%N)
  "$ctl" --control "$sock" update --inplace "$kvd/kvd-1.1.so" | sed 's/^/           /'
  echo "$t_req $(date +%s.%N)" > "$work/update.window"
  wait "$probe"
  story "slowest client request while it happened: $(cat "$work/probe.out")"
  wait "$benchpid" || { story "ERROR: redis-benchmark failed"; cat "$work/bench.out"; exit 1; }
  tr '\r' '\n' < "$work/bench.out" | grep -E 'requests per second' | sed 's/^/           redis-benchmark: /'
  if tr '\r' '\n' < "$work/bench.out" | grep -qiE 'error|ERR'; then
    story "ERROR: redis-benchmark saw errors"; exit 1
  fi
  story "INFO now says $(cli info server | tr -d '\r' | grep kvd_version); status and history:"
  "$ctl" --control "$sock" status | sed 's/^/           /'

  # A multi-version update to a version with a bug: the follower applies the
  # update beside the running version and is checked against it live; the
  # bug (kvd-2-crash dies on TYPE) takes the follower down, never the service.
  story "multi-version update to kvd-2-crash.so (typed values; crashes on TYPE): mvedsua-ctl update kvd-2-crash.so"
  "$ctl" --control "$sock" update --timeout 20s "$kvd/kvd-2-crash.so" | sed 's/^/           /'
  "$ctl" --control "$sock" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
log = s.get("log") or {}
print("           stage %s, leader %s, follower %s, log backlog %s bytes (peak %s)" % (
    s["stage"], s["leader_pid"], s["follower_pid"], log.get("backlog_bytes"), log.get("peak_backlog_bytes")))'
  story "a client sends TYPE key:1 (kvd-1.1 answers it as an unknown command; the follower's new code crashes)"
  cli type key:1 | grep . | sed 's/^/           client got: /'
  for _ in $(seq 50); do
    "$ctl" --control "$sock" status --json | grep -q '"stage":"single-leader"' && break
    sleep 0.1
  done
  "$ctl" --control "$sock" status --json | python3 -c '
import json, sys
u = json.load(sys.stdin)["last_update"]
print("           %s %s update: %s" % (u["outcome"], u["mode"], u["reason"].splitlines()[0]))'
  story "the service is still kvd-1.1 and serving: GET key:7 = $(cli get key:7), PING = $(cli ping)"
else
  story "(this build has no live update command yet: see README, 'What works today')"
fi

sum_after=$(sample)
story "DBSIZE = $(cli dbsize); checksum of the same sample: $sum_after"
[ "$sum_before" = "$sum_after" ] || { story "ERROR: keys changed"; exit 1; }

story "stopping: SIGTERM to the supervisor is forwarded to the program"
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e; pid=
story "the service exited with status $rc"
story "read more: README.md, docs/updates.md, docs/mve.md, docs/runtime.md, docs/kvd.md, bench/results/summary.md"
