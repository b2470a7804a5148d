#!/usr/bin/env bash
# smoke.sh SERVER PORT: starts a kvd server on 127.0.0.1:PORT, drives it with
# redis-cli, raw RESP over a socket and a short redis-benchmark, checks every
# reply, then stops it with SIGTERM and expects exit status 0.
#
# SERVER is a native kvd executable (build/examples/kvd/kvd-native), or a
# version kvd-N.so, which is run as `$MVEDSUA_RUN kvd-N.so` (MVEDSUA_RUN
# defaults to mvedsua-run from PATH).
# Exit status: 0 when everything matched, 1 on any mismatch (each one is
# printed), 2 on bad usage or when the server cannot be started.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 SERVER PORT" >&2
  exit 2
fi
server=$1
port=$2
for tool in redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "smoke: $tool not found" >&2; exit 2; }
done

case "$server" in
  *.so) launch=("${MVEDSUA_RUN:-mvedsua-run}" "$server") ;;
  *) launch=("$server") ;;
esac

log=$(mktemp "${TMPDIR:-/tmp}/kvd-smoke.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -f "$log"
}
trap cleanup EXIT

failures=0
fail() {
  echo "smoke: FAIL: $*" >&2
  failures=$((failures + 1))
}

# ---- start ---------------------------------------------------------------
"${launch[@]}" --port "$port" 2>"$log" &
pid=$!
ready="kvd: listening on 127.0.0.1:$port"
for _ in $(seq 100); do
  grep -qF "$ready" "$log" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "smoke: server exited before listening:" >&2
    cat "$log" >&2
    exit 2
  fi
  sleep 0.05
done
grep -qF "$ready" "$log" || { echo "smoke: no '$ready' within 5 s" >&2; exit 2; }

# ---- redis-cli -----------------------------------------------------------
# expect EXPECTED ARGS...: the reply to one command, as `redis-cli --no-raw`
# prints it ("OK", "\"v\"", "(integer) 2", "(nil)", "(error) ERR ...").
expect() {
  local want=$1
  shift
  local got
  got=$(redis-cli -p "$port" --no-raw "$@" 2>&1)
  [ "$got" = "$want" ] || fail "$*: expected [$want], got [$got]"
}

expect 'OK' flushall
expect 'PONG' ping
expect '"hello"' ping hello
expect 'OK' set a 1
expect '"1"' get a
expect '(integer) 2' incr a
expect '(integer) 1' incr fresh
expect '(nil)' get nope
expect 'OK' set s text
expect '(error) ERR value is not an integer or out of range' incr s
expect 'OK' set big 9223372036854775807
expect '(error) ERR increment or decrement would overflow' incr big
expect '(integer) 4' dbsize
expect '(integer) 3' exists a a nope fresh
expect '(integer) 2' del a fresh nope
expect '(integer) 2' dbsize
expect '(nil)' set s other nx
expect '"text"' get s
expect 'OK' set s other xx
expect '(nil)' set t v xx
expect '"other"' get s
expect 'OK' set "key with spaces" ""
expect '""' get "key with spaces"
expect "(error) ERR unknown command 'frob'" frob x
expect "(error) ERR wrong number of arguments for 'get' command" get
expect "(error) ERR wrong number of arguments for 'set' command" set k
expect '(error) ERR syntax error' set k v bogus
expect '(empty array)' command
expect 'OK' flushall
expect '(integer) 0' dbsize

info=$(redis-cli -p "$port" info | tr -d '\r')
grep -q '^kvd_version:[0-9]' <<<"$info" || fail "INFO has no kvd_version: [$info]"
grep -q '^keys:0$' <<<"$info" || fail "INFO does not report keys:0: [$info]"
version=$(sed -n 's/^kvd_version:\([0-9]*\).*/\1/p' <<<"$info")

# Version 2 and later: typed values and per-key hit counts.
if [ "${version:-0}" -ge 2 ]; then
  expect 'OK' sett n int 42
  expect 'int' type n
  expect 'OK' sett s string 42
  expect 'string' type s
  expect 'none' type nope
  expect '(error) ERR value is not an integer or out of range' sett n int 4x2
  expect "(error) ERR unknown value type 'float' (expected string or int)" sett n float 1
  expect 'OK' set plain v
  expect 'string' type plain
  expect '(integer) 43' incr n
  expect 'int' type n
  expect '(integer) 0' hits n
  expect '"43"' get n
  expect '"43"' get n
  expect '(integer) 2' hits n
  expect '(integer) 0' hits nope
  # Enough keys to make the table grow (and, from version 2, rehash
  # incrementally while being read and written).
  for i in $(seq 200); do printf 'SET k%d v%d\r\n' "$i" "$i"; done | redis-cli -p "$port" >/dev/null
  expect '"v1"' get k1
  expect '"v137"' get k137
  expect '(integer) 203' dbsize
  expect 'OK' flushall
fi

# ---- raw RESP: inline commands, pipelining, a request split across writes --
exec 3<>"/dev/tcp/127.0.0.1/$port" || { fail "cannot connect"; }
printf 'PING\r\nSET x  y\nGET x\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*1\r\n$4\r\nPI' >&3
sleep 0.2
printf 'NG\r\nQUIT\r\n' >&3
got=$(timeout 5 cat <&3 | tr -d '\r' | tr '\n' ' ')
exec 3<&-
want='+PONG +OK $1 y $1 y +PONG +OK '
[ "$got" = "$want" ] || fail "raw RESP session: expected [$want], got [$got]"

# ---- redis-benchmark -----------------------------------------------------
# Each INCR of the run hits the one key counter:__rand_int__, so its final
# value counts exactly the INCRs the server executed.
bench() {
  local out
  out=$(redis-benchmark -p "$port" -q -n 2000 -c 20 "$@" -t set,get,incr,ping 2>&1 | tr '\r' '\n')
  local rc=$?
  [ $rc -eq 0 ] || fail "redis-benchmark $* exited with $rc"
  if grep -qi 'error' <<<"$out"; then
    fail "redis-benchmark $* reported errors: $(grep -i error <<<"$out" | head -3)"
  fi
  for t in PING_INLINE PING_MBULK SET GET INCR; do
    grep -q "^$t: .* requests per second" <<<"$out" || fail "redis-benchmark $*: no $t result"
  done
}
bench
bench -P 16
expect '"4000"' get counter:__rand_int__
# The SET payload is 3 bytes (-d default); redis-benchmark 7 randomises them.
got=$(redis-cli -p "$port" get key:__rand_int__)
[ ${#got} -eq 3 ] || fail "get key:__rand_int__: expected a 3-byte value, got [$got]"

# ---- stop ----------------------------------------------------------------
kill -TERM "$pid"
wait "$pid"
status=$?
pid=
[ $status -eq 0 ] || fail "server exited with status $status after SIGTERM"
grep -q 'kvd: shutting down' "$log" || fail "no shutdown message in the server log"

if [ $failures -ne 0 ]; then
  echo "smoke: $failures check(s) failed" >&2
  exit 1
fi
echo "smoke: all checks passed"
