#!/usr/bin/env bash
# bootstrap.sh: set up, build and run mvedsua on a Debian 12 machine.
#
#   ./bootstrap.sh demo    install what is missing, build, run the demo
#   ./bootstrap.sh test    install what is missing, build, run every test
#   ./bootstrap.sh build   install what is missing and build only
#
# Environment: MVEDSUA_BUILD_DIR (default ./build), MVEDSUA_JOBS (default nproc),
# LIT_ARGS (extra arguments for lit, e.g. "--filter pass"), MVEDSUA_PORTS=1
# (also fetch and build the ports of real servers and run their tests:
# docs/ports/redis.md; several minutes more).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=${MVEDSUA_BUILD_DIR:-$here/build}
jobs=${MVEDSUA_JOBS:-$(nproc)}

# Everything comes from Debian 12's archive.
packages=(
  cmake make g++ pkg-config python3 python3-psutil git
  llvm-19-dev clang-19 llvm-19-tools lld-19 libclang-rt-19-dev libzstd-dev
  libabsl-dev libffi-dev
  redis-tools procps bc
  libevent-dev libmemcached-tools lftp curl
  libsasl2-dev libssl-dev
)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
}

build() {
  say "configuring in $build_dir"
  local ports=OFF
  [ "${MVEDSUA_PORTS:-0}" = 1 ] && ports=ON
  cmake -S "$here" -B "$build_dir" -DMVEDSUA_PORTS=$ports >/dev/null
  say "building (-j$jobs)"
  cmake --build "$build_dir" -j"$jobs"
}

run_tests() {
  local lit=/usr/lib/llvm-19/build/utils/lit/lit.py
  local results="$build_dir/test/lit-results.json"
  say "running the lit suite"
  set +e
  # shellcheck disable=SC2086
  # Debian's python3 (it has psutil, which lit needs for per-test time limits).
  /usr/bin/python3 "$lit" -sv --time-tests -o "$results" ${LIT_ARGS:-} "$build_dir/test"
  local rc=$?
  set -e
  python3 - "$results" <<'PY'
import json, sys
tests = json.load(open(sys.argv[1]))["tests"]
codes = [t["code"] for t in tests]
ok = sum(c in ("PASS", "XFAIL") for c in codes)
bad = sum(c in ("FAIL", "XPASS", "UNRESOLVED", "TIMEOUT") for c in codes)
skip = sum(c in ("UNSUPPORTED", "SKIPPED", "EXCLUDED") for c in codes)
# The end of each failure's output again, last: a log cut in its middle
# still shows why a test failed.
for t in tests:
    if t["code"] in ("FAIL", "XPASS", "UNRESOLVED", "TIMEOUT"):
        lines = t.get("output", "").rstrip().splitlines()
        print(f"--- {t['name']} ({t['code']}), the last {min(len(lines), 60)} lines:")
        print("\n".join(lines[-60:]))
print(f"tests: {ok} passed, {bad} failed, {skip} skipped")
PY
  return $rc
}

case "${1:-}" in
  demo)  install_missing; build; exec "$here/examples/demo.sh" "$build_dir" ;;
  test)  install_missing; build; run_tests ;;
  build) install_missing; build ;;
  *) echo "usage: $0 demo|test|build" >&2; exit 2 ;;
esac
