#!/bin/bash
# run.sh MVEDSUA_RUN PYTHON OLD.so NEXT.so PREFIX [load.py options]
# Serves OLD.so under mvedsua-run on a free loopback port with
# KVS_NEXT=NEXT.so (the version the "update" command asks for), runs the
# clients, waits for the server. Writes PREFIX.out/.err (the server's),
# .load (the clients'), .status (MVEDSUA_MVE_STATUS), .sum (the follower's
# MVEDSUA_MVE_SUMMARY) and .rc ("load STATUS server STATUS").
run=$1 py=$2 old=$3 next=$4 prefix=$5
shift 5
here=$(dirname "$0")
port=$("$py" "$here/../../lib/free-port.py")
rm -f "$prefix".status "$prefix".sum
KVS_NEXT=$next MVEDSUA_MVE_STATUS=$prefix.status MVEDSUA_MVE_SUMMARY=$prefix.sum \
  timeout 120 "$run" "$old" "$port" > "$prefix".out 2> "$prefix".err &
server=$!
timeout 120 "$py" "$here/load.py" "$port" "$@" > "$prefix".load
load=$?
wait $server
echo "load $load server $?" > "$prefix".rc
