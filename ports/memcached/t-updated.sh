#!/usr/bin/env bash
# ports/memcached/t-updated.sh [-B MVEDSUA_BUILD_DIR] [TEST...]
#
# Runs memcached's own test suite (t/*.t, perl) against a server that was
# updated in place along the whole chain: the first version of the port is
# started under mvedsua-run, filled by memcslap, updated to every later
# version, and the tests (default: the list below) run against the last
# version with the suite of that version's sources, pointed at the running
# server by T_MEMD_USE_DAEMON (t/lib/MemcachedTest.pm: every new_memcached
# connects to it instead of starting one). Prints one line per test file
# and a summary; exits 1 if any test failed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mbuild=$root/build
if [ "${1:-}" = -B ]; then mbuild=$(cd "$2" && pwd); shift 2; fi
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  # The files of 1.6.18's suite that pass against an external server started
  # with the defaults (-p PORT -U 0 -l 127.0.0.1): the others start servers
  # with options of their own (-m, -I, -o ..., -S, TLS, UDP, unix sockets,
  # extstore), read the server's pid or stop it, or expect counters of a
  # fresh server; against a native 1.6.18-1+deb12u1 they fail or skip alike.
  # issue_22 also passes only when earlier tests filled the server (it
  # expects evictions from a server started with -m 3).
  tests=(binary-get bogus-commands cas chunked-items evictions flags getandtouch getset
         incrdecr issue_108 issue_14 issue_152 issue_192 issue_3 issue_41 issue_68
         issue_70 line-lengths malicious-commands multiversioning noreply quit
         strtol-testing touch)
fi
out=$mbuild/ports/memcached
mapfile -t versions < "$out/versions.list"
last=${versions[-1]}
work=$(mktemp -d "${TMPDIR:-/tmp}/memcached-t.XXXXXX")
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 "$root/test/lib/free-port.py")
"$mbuild/bin/mvedsua-run" --control "$work/ctl.sock" "$out/${versions[0]}.so" -u root \
  -p "$port" -U 0 -l 127.0.0.1 > "$work/server.log" 2>&1 & server=$!
for _ in $(seq 200); do
  memcstat --servers="127.0.0.1:$port" > /dev/null 2>&1 && break
  sleep 0.05
done
memcslap --servers="127.0.0.1:$port" --concurrency=4 --execute-number=2500 --test=set > /dev/null
for v in "${versions[@]:1}"; do
  "$mbuild/bin/mvedsua-ctl" --control "$work/ctl.sock" update --inplace "$out/$v.so" | cut -c1-80
done
"$mbuild/bin/mvedsua-ctl" --control "$work/ctl.sock" status | head -2
cd "$out/tree/$last"
files=0 oks=0 bad=0
for t in "${tests[@]}"; do
  # Each file expects a server of its own: an empty cache (flush_all) and
  # its own session (a test that stops "its" server signals its process
  # group, which is then only itself).
  memcflush --servers="127.0.0.1:$port"
  set +e
  T_MEMD_USE_DAEMON="127.0.0.1:$port" setsid timeout 300 perl "t/$t.t" > "$work/$t.out" 2>&1
  rc=$?
  set -e
  ok=$(grep -c '^ok' "$work/$t.out" || true)
  notok=$(grep -c '^not ok' "$work/$t.out" || true)
  printf 't/%s.t: %d ok, %d not ok%s\n' "$t" "$ok" "$notok" "$([ "$rc" = 0 ] || echo ", exit $rc")"
  files=$((files + 1)) oks=$((oks + ok))
  if [ "$rc" != 0 ] || [ "$notok" != 0 ]; then bad=$((bad + 1)); fi
done
printf 't/: %d files, %d assertions ok, %d files failed\n' "$files" "$oks" "$bad"
echo "server still running the last version: $("$mbuild/bin/mvedsua-ctl" --control "$work/ctl.sock" status | sed -n 's/^version: .*\/\(memcached-[^ ]*\)\.so.*/\1/p')"
[ "$bad" = 0 ]
