#!/usr/bin/env bash
# bench/inplace-pause.sh [--build DIR] [--results DIR] [--keys "10000 100000 1000000"]
#                        [--window SECONDS]
#
# The in-place update pause as clients see it: kvd-1 holding N keys is updated
# to kvd-1.1 (same state, new code) with `mvedsua-ctl update --inplace` while
# probe clients send GETs back to back, each timing every request. Reported
# per N:
#   client_max_ms     the slowest request of the probes in the window around
#                     the update (the pause as a client sees it)
#   baseline_max_ms   the slowest request of the same probes over a window of
#                     the same length with no update (the noise floor)
#   pause_ms          the runtime's pause, from the update point taking the
#                     request to the new version reaching its update point
#   load_ms, transfer_ms  its parts: loading kvd-1.1.so, and planning and
#                     writing the state (the pointer walk over every entry)
#   heap_objects, entries, remapped   what the transfer went through
# Writes bench/results/inplace-pause.json and inplace-pause.md. Needs
# redis-cli and python3. bench/run.sh can call it as
#   "$here/inplace-pause.sh" --build "$build" --results "$results"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=$root/build
results=$here/results
keys_list="10000 100000 1000000"
window=3
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift ;;
    --results) results=$2; shift ;;
    --keys) keys_list=$2; shift ;;
    --window) window=$2; shift ;;
    *) echo "usage: $0 [--build DIR] [--results DIR] [--keys \"N ...\"] [--window S]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$results"
run=$build/bin/mvedsua-run
ctl=$build/bin/mvedsua-ctl
kvd=$build/examples/kvd
for f in "$run" "$ctl" "$kvd/kvd-1.so" "$kvd/kvd-1.1.so"; do
  [ -e "$f" ] || { echo "inplace-pause: missing $f (build the kvd-examples target)" >&2; exit 1; }
done
command -v redis-cli >/dev/null || { echo "inplace-pause: needs redis-cli" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/inplace-pause.XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The probe: CLIENTS connections, each sending GET key:1 and waiting for the
# reply, for SECONDS; prints the slowest request (ms) as JSON.
cat > "$work/probe.py" <<'EOF'
import json, socket, sys, threading, time
port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
req = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n"
worst, count = [0.0] * clients, [0] * clients
def run(i):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        s.sendall(req)
        buf = b""
        while not buf.endswith(b"\r\n") or buf.count(b"\r\n") < 2:
            buf += s.recv(4096)
        worst[i] = max(worst[i], time.perf_counter() - t)
        count[i] += 1
threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"max_ms": round(max(worst) * 1000, 3), "requests": sum(count)}))
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts kvd-1 and loads N keys (values of 16 bytes); sets $server, $port.
start_kvd() {
  local n=$1
  port=$(free_port)
  rm -f "$work/ctl.sock"
  "$run" --control "$work/ctl.sock" "$kvd/kvd-1.so" --port "$port" 2>"$work/server.log" &
  server=$!
  for _ in $(seq 200); do
    grep -q listening "$work/server.log" 2>/dev/null && [ -S "$work/ctl.sock" ] && break
    sleep 0.05
  done
  seq 1 "$n" | awk '{ printf "SET key:%d value-%010d\r\n", $1, $1 }' |
    redis-cli -p "$port" --pipe >/dev/null
}

stop_kvd() {
  kill "$server" && wait "$server" || true
  server=
}

# One size: a quiet window for the baseline, then the same window with the
# update in its middle. Prints one JSON object.
measure() {
  local n=$1 clients=4
  start_kvd "$n"
  local size baseline during status
  size=$(redis-cli -p "$port" dbsize)
  baseline=$(python3 "$work/probe.py" "$port" "$clients" "$window")
  python3 "$work/probe.py" "$port" "$clients" "$window" > "$work/during.json" &
  local probe=$!
  sleep "$(python3 -c "print($window / 3)")"
  "$ctl" --control "$work/ctl.sock" update --inplace --timeout 1m "$kvd/kvd-1.1.so" >&2
  wait "$probe"
  during=$(cat "$work/during.json")
  status=$("$ctl" --control "$work/ctl.sock" status --json)
  stop_kvd
  python3 - "$n" "$size" "$baseline" "$during" "$status" <<'EOF'
import json, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
base, during, st = (json.loads(a) for a in sys.argv[3:6])
u = st["last_update"]
assert u["outcome"] == "finished", u
print(json.dumps({
    "keys": n, "dbsize": size,
    "client_max_ms": during["max_ms"], "baseline_max_ms": base["max_ms"],
    "probe_requests": during["requests"],
    "pause_ms": u["pause_ms"], "load_ms": u.get("load_ms"),
    "transfer_ms": u.get("transfer_ms"), "heap_objects": u["heap_objects"],
    "entries": u["entries"], "remapped": u["remapped"]}))
EOF
}

rows=()
for n in $keys_list; do
  echo "inplace-pause: kvd-1 -> kvd-1.1 with $n keys" >&2
  rows+=("$(measure "$n")")
done

machine=$(printf '{"cores": %d, "kernel": "%s", "cpu": "%s"}' "$(nproc)" "$(uname -r)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")
printf '%s\n' "${rows[@]}" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
machine = json.loads(sys.argv[1])
window = float(sys.argv[4])
json.dump({"benchmark": "inplace-pause", "update": "kvd-1 -> kvd-1.1 in place",
           "machine": machine, "window_s": window, "results": rows},
          open(sys.argv[2], "w"), indent=2)
with open(sys.argv[3], "w") as md:
    md.write("### In-place update pause (kvd-1 -> kvd-1.1)\n\n")
    md.write("%d cores, %s, Linux %s. 4 probe clients send GETs back to back; the update "
             "is requested %g s into a %g s window. The no-update column is the noise "
             "floor of the machine during the run; the runtime pause and its parts "
             "come from mvedsua-ctl status --json.\n\n" % (machine["cores"], machine["cpu"],
                                                             machine["kernel"], window / 3, window))
    md.write("| keys | slowest request during the update | slowest request, no update | "
             "runtime pause | loading | state transfer | heap objects walked |\n")
    md.write("|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in rows:
        md.write("| %d | %.1f ms | %.1f ms | %.1f ms | %s | %s | %d |\n" % (
            r["keys"], r["client_max_ms"], r["baseline_max_ms"], r["pause_ms"],
            "%.1f ms" % r["load_ms"] if r["load_ms"] is not None else "n/a",
            "%.1f ms" % r["transfer_ms"] if r["transfer_ms"] is not None else "n/a",
            r["heap_objects"]))
' "$machine" "$results/inplace-pause.json" "$results/inplace-pause.md" "$window"
cat "$results/inplace-pause.md"
