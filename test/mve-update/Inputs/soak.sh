# soak.test's driver: soak.sh MVEDSUA_RUN PYTHON V1.so V1B.so PREFIX INPUTS_DIR
run=$1 py=$2 v1=$3 v1b=$4 t=$5 in=$6
port=$("$py" "$in/../../lib/free-port.py")
rm -f "$t.status"
KVS_NEXT=$v1b MVEDSUA_MVE_STATUS=$t.status timeout 120 "$run" "$v1" "$port" > "$t.server" 2> "$t.err" &
server=$!
"$py" "$in/load.py" "$port" --rounds 3 --no-shutdown > /dev/null
# timeout -> mvedsua-run (the supervisor) -> the program, which leads.
supervisor=$(pgrep -P "$server")
prog=$(pgrep -P "$supervisor")
[ -n "$prog" ] && [ -d "/proc/$prog/fd" ] || { echo "no program process"; exit 1; }
fds_before=$(ls /proc/$prog/fd | wc -l)
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$prog/status)
"$py" "$in/load.py" "$port" --clients 2 --rounds 700 --sleep 2 --cycle 10,6 --no-shutdown
sleep 0.5
"$py" "$in/load.py" "$port" --clients 1 --rounds 3 --no-shutdown > /dev/null
fds_after=$(ls /proc/$prog/fd | wc -l)
rss_after=$(awk '/VmRSS/ {print $2}' /proc/$prog/status)
"$py" "$in/load.py" "$port" --clients 1 --rounds 1 > /dev/null
wait
echo "rolled back on request: $(grep -c 'rolled back on request' "$t.err")"
followed=$(grep -c '"stage": "outdated-leader"' "$t.status")
# Caught up within the 6 rounds before the rollback: nearly always on a quiet
# machine; about half the time with clients, leader and follower on two
# cores loaded by other work, and fewer when other tests run beside it.
[ "$followed" -ge 10 ] && echo "followed before the rollback: at least 10 times" || echo "followed before the rollback: $followed times"
[ "$fds_before" = "$fds_after" ] && echo "descriptors: same" || echo "descriptors: $fds_before -> $fds_after"
[ $((rss_after - rss_before)) -lt 8192 ] && echo "memory: bounded" || echo "memory: $rss_before kB -> $rss_after kB"
