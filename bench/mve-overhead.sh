#!/bin/bash
# bench/mve-overhead.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
#
# What a leader pays for its follower: the throughput of the small epoll
# key-value server of test/mve-update (request/response "get" over loopback
# TCP, CONNECTIONS closed-loop clients for SECONDS each) measured
#   native           built without the plugin, run directly
#   single_leader    under mvedsua-run, no follower (the shim's OFF path)
#   outdated_leader  the same process after a multi-version update to a copy
#                    of its own version, the follower caught up and following
# and printed as JSON with the ratios to native and to single_leader, from
# this one run. The machine is shared: compare ratios, not absolute rates.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
secs=${2:-3}
conns=${3:-4}
clang=/usr/lib/llvm-19/bin/clang
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

cat > "$tmp/client.c" <<'C'
/* client PORT SECONDS CONNS: closed-loop "get" clients; prints ops/s. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static int port, secs;
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static void *run(void *arg) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    exit(2);
  const char req[] = "get k0\n";
  char buf[256];
  long n = 0;
  double end = now() + secs;
  while (now() < end) {
    if (write(fd, req, sizeof req - 1) != sizeof req - 1)
      exit(3);
    ssize_t got = 0, k;
    while ((k = read(fd, buf + got, sizeof buf - got)) > 0 &&
           buf[got + k - 1] != '\n')
      got += k;
    if (k <= 0)
      exit(4);
    n++;
  }
  close(fd);
  *(long *)arg = n;
  return NULL;
}
int main(int argc, char **argv) {
  port = atoi(argv[1]), secs = atoi(argv[2]);
  int conns = atoi(argv[3]);
  pthread_t t[64];
  long counts[64] = {0}, total = 0;
  for (int i = 0; i < conns; ++i)
    pthread_create(&t[i], NULL, run, &counts[i]);
  for (int i = 0; i < conns; ++i)
    pthread_join(t[i], NULL), total += counts[i];
  printf("%.0f\n", total / (double)secs);
  return 0;
}
C
$clang -O2 -pthread "$tmp/client.c" -o "$tmp/client"
kvs=$src/test/mve-update/Inputs/kvs.c
flags="-I$src/include -I$src/runtime -DKVS=1"
$clang -O2 $flags "$kvs" -o "$tmp/native"
$clang -g -O2 -fPIC -shared -fno-eliminate-unused-debug-types \
  -fpass-plugin="$build/lib/MvedsuaPass.so" $flags "$kvs" \
  -L"$build/lib" -lmvedsua -o "$tmp/v1.so"
cp "$tmp/v1.so" "$tmp/v1-copy.so"

port() { python3 "$src/test/lib/free-port.py"; }
say() { python3 -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
s.sendall(sys.argv[2].encode()+b"\n")
print(s.makefile().readline().strip()) if sys.argv[2]!="shutdown" else None' "$@"; }
wait_port() {
  for _ in $(seq 200); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null && return
    sleep 0.02
  done
  echo "server did not start" >&2; exit 1
}

p=$(port)
"$tmp/native" "$p" > /dev/null & wait_port "$p"
say "$p" "set k0 v0" > /dev/null
native=$("$tmp/client" "$p" "$secs" "$conns")
say "$p" shutdown

p=$(port)
KVS_NEXT=$tmp/v1-copy.so MVEDSUA_MVE_STATUS=$tmp/status \
  MVEDSUA_MVE_FOLLOWER_WAIT_MS=60000 \
  "$build/bin/mvedsua-run" "$tmp/v1.so" "$p" > /dev/null 2> "$tmp/err" &
server=$!
wait_port "$p"
say "$p" "set k0 v0" > /dev/null
single=$("$tmp/client" "$p" "$secs" "$conns")
say "$p" update > /dev/null
for _ in $(seq 500); do
  grep -q '"stage": "outdated-leader"' "$tmp/status" 2>/dev/null && break
  say "$p" "get k0" > /dev/null
  sleep 0.01
done
grep -q '"stage": "outdated-leader"' "$tmp/status" || { cat "$tmp/err" >&2; exit 1; }
following=$("$tmp/client" "$p" "$secs" "$conns")
say "$p" shutdown
wait "$server"
peak=$(tail -1 "$tmp/status" | sed 's/.*"peak_backlog_bytes": \([0-9]*\).*/\1/')
grep -q "records replayed" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
ended=$(grep -o "follower [0-9]* ended ([^)]*): [0-9]* of [0-9]* records replayed" "$tmp/err")

python3 - "$native" "$single" "$following" "$secs" "$conns" "$peak" "$ended" <<'PY'
import json, sys
native, single, following = (float(x) for x in sys.argv[1:4])
print(json.dumps({
    "workload": "kvs get, %s closed-loop loopback connections, %s s each" % (sys.argv[5], sys.argv[4]),
    "ops_per_s": {"native": native, "single_leader": single, "outdated_leader": following},
    "single_leader_vs_native": round(single / native, 3),
    "outdated_leader_vs_native": round(following / native, 3),
    "outdated_leader_vs_single_leader": round(following / single, 3),
    "peak_backlog_bytes": int(sys.argv[6]),
    "follower_end": sys.argv[7],
}, indent=2))
PY
