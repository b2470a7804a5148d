#!/bin/bash
# kv.sh BINDIR EXAMPLES TMP PORT: kitsune-kv (examples/kitsune-kv) started by
# `driver`, driven by redis-cli and by one connection held open from start to
# end (bash's /dev/tcp), updated by `doupd`: first in multi-version mode (the
# follower catches up and follows, then diverges on a command only v2 knows
# and is rolled back), then in place. Prints what the clients saw.
set -u
bin=$1 ex=$2 t=$3 port=$4
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

"$bin/driver" "$ex/kitsune-kv-1.so" --port "$port" 2> "$t/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 200); do
  redis-cli -p "$port" PING > /dev/null 2>&1 && break
  sleep 0.05
done
exec 3<>"/dev/tcp/127.0.0.1/$port"
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

out=$("$bin/doupd" "$pid" "$ex/kitsune-kv-2.so" 2>&1)
echo "inplace update: exit $?: $out"
echo "v2: $(cli GET a) $(cli GET a) $(cli HITS a) $(cli HITS b) $(held GET c) $(held HITS c) $(cli DBSIZE)"
info=$(cli INFO | tr -d '\r' | tr '\n' ' ')
echo "v2 INFO: $info"
echo "v2 $(status)"
exec 3>&-
