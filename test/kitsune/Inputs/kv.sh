#!/bin/bash
# kv.sh BINDIR EXAMPLES TMP PORT1 PORT2: kitsune-kv (examples/kitsune-kv)
# started by `driver`, driven by redis-cli and by one connection held open
# from start to end (bash's /dev/tcp), updated by `doupd`. Server 1, in
# multi-version mode: the follower catches up and follows, diverges on a
# command only v2 knows and is rolled back; a second update is promoted
# (v2 leads, v1 follows) and finished (v2 alone). Server 2: in place.
# Prints what the clients saw.
set -u
bin=$1 ex=$2 t=$3 port1=$4 port2=$5
export MVEDSUA_KITSUNE_DIR=$t
cli() { redis-cli -p "$port" "$@"; }
# The held connection: one RESP command, one reply line (bulk: two).
held() {
  local cmd="*$#\r\n" a line
  for a in "$@"; do cmd+="\$${#a}\r\n$a\r\n"; done
  printf "$cmd" >&3
  IFS= read -r -t 20 line <&3 || { echo "held: no reply"; return; }
  line=${line%$'\r'}
  if [[ $line == \$* && $line != '$-1' ]]; then
    IFS= read -r -t 20 line <&3
    line=${line%$'\r'}
  fi
  echo "$line"
}
status() {
  "$bin/mvedsua-ctl" --control "$t/kitsune-$pid.sock" status --json |
    python3 -c 'import json, sys
s = json.load(sys.stdin)
u = s.get("last_update") or {}
print("stage", s["stage"], "version", s["version"].split("/")[-1],
      "follower", "yes" if s.get("follower_pid") else "no",
      "last", u.get("mode"), u.get("outcome"),
      (u.get("reason") or "").split("\n")[0])'
}

start() {
  port=$1
  "$bin/driver" "$ex/kitsune-kv-1.so" --port "$port" 2> "$t/server-$port.log" &
  pid=$!
  for _ in $(seq 200); do
    redis-cli -p "$port" PING > /dev/null 2>&1 && break
    sleep 0.05
  done
  exec 3<>"/dev/tcp/127.0.0.1/$port"
}
stop() {
  exec 3>&-
  kill "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
}
ctl() { "$bin/mvedsua-ctl" --control "$t/kitsune-$pid.sock" "$@" 2>&1; }
trap 'stop' EXIT

# Server 1: multi-version.
start "$port1"
echo "v1: $(cli SET a 1) $(cli SET b 2) $(held SET c 3) $(cli GET a) $(cli DBSIZE)"
out=$("$bin/doupd" --multi-version "$pid" "$ex/kitsune-kv-2.so" 2>&1)
echo "mve update: exit $?: $out"
echo "mve $(status)"
echo "mve following: $(cli GET a) $(cli DBSIZE) $(held GET c) $(cli SET d 4)"
echo "mve still $(status)"
echo "mve HITS (v1 leads): $(cli HITS a)"
for _ in $(seq 200); do
  status | grep -q rolled-back && break
  sleep 0.05
done
echo "mve after HITS: $(status)"
echo "mve serving: $(cli GET d) $(held DBSIZE)"
out=$("$bin/doupd" --multi-version "$pid" "$ex/kitsune-kv-2.so" 2>&1)
echo "mve again: exit $?: $out"
echo "mve following: $(cli GET a) $(held GET c)"
out=$(ctl promote)
echo "promote: exit $?: $out"
for _ in $(seq 200); do
  status | grep -q updated-leader && break
  sleep 0.05
done
echo "promoted: $(status)"
echo "v2 leads: $(cli GET a) $(held GET c) $(cli SET e 5) $(cli DBSIZE)"
out=$(ctl finish)
echo "finish: exit $?: $out"
for _ in $(seq 200); do
  status | grep -q 'stage single-leader' && break
  sleep 0.05
done
echo "finished: $(status)"
echo "v2 alone: $(cli HITS a) $(held HITS c) $(cli GET e)"
info=$(cli INFO | tr -d '\r' | tr '\n' ' ')
echo "v2 INFO: $info"
stop

# Server 2: in place.
start "$port2"
echo "v1: $(cli SET a 1) $(cli SET b 2) $(held SET c 3) $(cli GET a) $(cli DBSIZE)"
out=$("$bin/doupd" "$pid" "$ex/kitsune-kv-2.so" 2>&1)
echo "inplace update: exit $?: $out"
echo "v2: $(cli GET a) $(cli GET a) $(cli HITS a) $(cli HITS b) $(held GET c) $(held HITS c) $(cli DBSIZE)"
info=$(cli INFO | tr -d '\r' | tr '\n' ' ')
echo "v2 INFO: $info"
echo "v2 $(status)"
