#!/usr/bin/env bash
# ports/redis/build.sh: fetch Debian 12's redis source package, apply the
# mvedsua port, and build every version listed in versions.txt as an
# updatable shared object, each with the state transformer from the one
# before it. See docs/ports/redis.md.
#
#   ports/redis/build.sh [-B MVEDSUA_BUILD_DIR] [-j N]
#
# MVEDSUA_BUILD_DIR is a configured and built mvedsua tree (default ./build);
# its plugin, runtime and mvedsua-xfgen are used. Everything goes under
# MVEDSUA_BUILD_DIR/ports/redis:
#   src/                the downloaded source package (.dsc, .orig, .debian)
#   tree/NAME/          each version's build tree, made from a copy of the
#                       previous one, so a version only compiles what its
#                       patches changed (and a rebuild what the port changed);
#                       all rebuilt when MvedsuaPass.so changed (tree.plugin)
#   NAME.so, NAME.bc    each version, and its bitcode for mvedsua-xfgen
#   NAME.xform.c        the transformer from the previous version
#   versions.list       the names built, oldest first (written last)
#   bugs.list           versions with an injected bug (bugs/): NAME PREVIOUS
#
# Environment: REDIS_DEB_VERSION (default 5:7.0.15-1~deb12u10, the package
# whose debian/patches provide the security fixes), REDIS_DEB_MIRROR (default
# http://deb.debian.org). The machine's apt configuration is not touched:
# apt-get runs with a private sources list and state directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mbuild=$root/build
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    -B) mbuild=$(cd "$2" && pwd); shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

debver=${REDIS_DEB_VERSION:-5:7.0.15-1~deb12u10}
mirror=${REDIS_DEB_MIRROR:-http://deb.debian.org}
llvm=/usr/lib/llvm-19/bin
plugin=$mbuild/lib/MvedsuaPass.so
xfgen=$mbuild/bin/mvedsua-xfgen
for f in "$plugin" "$mbuild/lib/libmvedsua.so" "$xfgen" "$llvm/clang" "$llvm/llvm-link"; do
  [ -e "$f" ] || { echo "build.sh: $f not found (build mvedsua first)" >&2; exit 1; }
done
out=$mbuild/ports/redis
mkdir -p "$out"
say() { printf 'redis-port: %s\n' "$*"; }
. "$here/../lib/debian-source.sh"

# 1. The source package (ports/lib/debian-source.sh), and 2. versions.txt
#    naming every patch of its series exactly once, in order.
debian_source "$out" redis "$debver" "$mirror"
check_series "$pristine" "$here/versions.txt"

# The port migrates redis' command tables (their run-time counters and dicts
# live in them): a patch that changed them would be undone by the update.
for p in $listed; do
  if grep -qE '^\+\+\+ [^/ ]*/src/commands(\.c|/)' "$pristine/debian/patches/$p"; then
    echo "build.sh: $p changes redis' command table, which the port migrates;" \
         "the update would undo it (docs/ports/redis.md)" >&2
    exit 1
  fi
done

# Nothing to do when every version is newer than everything it is made from.
if [ -f "$out/versions.list" ] &&
   [ -z "$(find "$here" "$plugin" "$mbuild/lib/libmvedsua.so" "$xfgen" "$root/include" \
           -newer "$out/versions.list" -type f | head -1)" ]; then
  say "up to date: $(wc -l < "$out/versions.list") versions in $out"
  exit 0
fi

# 3. Each version: the Debian patches so far + the port, synchronised into
#    the build tree (files whose content changed only), built incrementally.
# NO_MALLOC_USABLE_SIZE: zmalloc records each allocation's size instead of
# asking malloc_usable_size(), so buffer capacities (the query buffer's free
# space is the length redis asks read() for; a client's reply buffer) are
# the sizes redis asked for, the same in a multi-version update's leader and
# follower, whose heaps differ after the update (docs/ports/redis.md).
makeargs=(MALLOC=libc CC="$llvm/clang" OPTIMIZATION=-O2 CFLAGS="-fPIC -g"
          "REDIS_CFLAGS=-fpass-plugin=$plugin -I$root/include -fno-eliminate-unused-debug-types -DNO_MALLOC_USABLE_SIZE"
          "REDIS_LDFLAGS=-shared -L$mbuild/lib -Wl,--no-as-needed -lmvedsua"
          MVEDSUA_LLVM_LINK="$llvm/llvm-link")
debtree=$out/debian-tree
stage=$out/stage
rm -rf "$debtree" && cp -a "$pristine" "$debtree"
# Trees whose objects another plugin compiled are built again from scratch.
plugin_sum=$(md5sum < "$plugin")
if [ "$(cat "$out/tree.plugin" 2>/dev/null)" != "$plugin_sum" ]; then
  rm -rf "$out/tree"
fi
mkdir -p "$out/tree"
echo "$plugin_sum" > "$out/tree.plugin"
rm -f "$out/versions.list.tmp"
prev=""
while read -r name patches; do
  case "$name" in ''|'#'*) continue ;; esac
  say "$name"
  tree=$out/tree/$name
  if [ ! -d "$tree" ]; then
    if [ -n "$prev" ]; then cp -a "$out/tree/$prev" "$tree"; else mkdir -p "$tree"; fi
  fi
  for p in $patches; do
    patch -d "$debtree" -p1 -s -N --no-backup-if-mismatch < "$debtree/debian/patches/$p" ||
      { echo "build.sh: Debian patch $p does not apply" >&2; exit 1; }
  done
  rm -rf "$stage" && cp -a "$debtree" "$stage"
  for p in "$here"/patches/*.patch; do
    patch -d "$stage" -p1 -s -N --no-backup-if-mismatch < "$p" ||
      { echo "build.sh: port patch $(basename "$p") does not apply to $name" >&2; exit 1; }
  done
  # Copy what differs; unchanged files keep their time stamps (and objects).
  (cd "$stage" && find . -type f ! -path './debian/*' -print0) |
    while IFS= read -r -d '' f; do
      if ! cmp -s "$stage/$f" "$tree/$f"; then
        mkdir -p "$(dirname "$tree/$f")"
        cp -p "$stage/$f" "$tree/$f"
        touch "$tree/$f"
      fi
    done
  # The bundled libraries (Lua above all: several fixes are in deps/lua) are
  # only built by redis' Makefile when its settings change: bring them up to
  # date here (their Makefiles rebuild what changed).
  : > "$out/$name.log"
  if [ -f "$tree/src/.make-settings" ]; then
    make -C "$tree/deps" -j"$jobs" "${makeargs[@]}" hiredis linenoise lua hdr_histogram \
      >> "$out/$name.log" 2>&1 ||
      { echo "build.sh: building redis' bundled libraries for $name failed; see $out/$name.log" >&2; exit 1; }
  fi
  rm -f "$tree/src/redis-server"
  make -C "$tree/src" -j"$jobs" "${makeargs[@]}" redis-server redis-server.bc >> "$out/$name.log" 2>&1 ||
    { echo "build.sh: building $name failed; see $out/$name.log" >&2; tail -20 "$out/$name.log" >&2; exit 1; }
  cp "$tree/src/redis-server.bc" "$out/$name.bc"
  if [ -n "$prev" ]; then
    # The state transformer from the previous version, linked into this one.
    "$xfgen" "$out/$prev.bc" "$out/$name.bc" -o "$out/$name.xform.c" > "$out/$name.xfgen.log" 2>&1 ||
      { echo "build.sh: mvedsua-xfgen $prev -> $name refused:" >&2; cat "$out/$name.xfgen.log" >&2; exit 1; }
    "$llvm/clang" -g -O2 -fPIC -fno-eliminate-unused-debug-types "-fpass-plugin=$plugin" \
      "-I$root/include" -c "$out/$name.xform.c" -o "$out/$name.xform.o"
    rm -f "$tree/src/redis-server"
    make -C "$tree/src" "${makeargs[@]}" MVEDSUA_XFORM_OBJ="$out/$name.xform.o" redis-server >> "$out/$name.log" 2>&1 ||
      { echo "build.sh: linking $name failed; see $out/$name.log" >&2; exit 1; }
  fi
  cp "$tree/src/redis-server" "$out/$name.so"
  echo "$name" >> "$out/versions.list.tmp"
  prev=$name
done < "$here/versions.txt"

# 4. Versions with an injected bug, for the multi-version test (never part of
#    the chain): bugs/NAME.patch is applied to the version named in its file
#    name's table below, in a tree of its own, and built like the others
#    with the transformer from the version before that one.
#      redis-7.0.15-deb12u8-bad  deb12u8 with CVE-2025-67733's fix reverted in
#                                FUNCTION LIST (updated to from deb12u7)
rm -f "$out/bugs.list"
build_bug() { # NAME BASE PREVIOUS PATCH
  local name=$1 base=$2 prevv=$3 p=$4 tree=$out/tree/$1
  say "$name (injected bug: $(basename "$p"))"
  rm -rf "$tree" && cp -a "$out/tree/$base" "$tree"
  patch -d "$tree" -p1 -s -N --no-backup-if-mismatch < "$p" ||
    { echo "build.sh: $(basename "$p") does not apply to $base" >&2; exit 1; }
  : > "$out/$name.log"
  rm -f "$tree/src/redis-server"
  make -C "$tree/src" -j"$jobs" "${makeargs[@]}" redis-server redis-server.bc >> "$out/$name.log" 2>&1 ||
    { echo "build.sh: building $name failed; see $out/$name.log" >&2; exit 1; }
  cp "$tree/src/redis-server.bc" "$out/$name.bc"
  "$xfgen" "$out/$prevv.bc" "$out/$name.bc" -o "$out/$name.xform.c" > "$out/$name.xfgen.log" 2>&1 ||
    { echo "build.sh: mvedsua-xfgen $prevv -> $name refused:" >&2; cat "$out/$name.xfgen.log" >&2; exit 1; }
  "$llvm/clang" -g -O2 -fPIC -fno-eliminate-unused-debug-types "-fpass-plugin=$plugin" \
    "-I$root/include" -c "$out/$name.xform.c" -o "$out/$name.xform.o"
  rm -f "$tree/src/redis-server"
  make -C "$tree/src" "${makeargs[@]}" MVEDSUA_XFORM_OBJ="$out/$name.xform.o" redis-server >> "$out/$name.log" 2>&1 ||
    { echo "build.sh: linking $name failed; see $out/$name.log" >&2; exit 1; }
  cp "$tree/src/redis-server" "$out/$name.so"
  echo "$name $prevv" >> "$out/bugs.list"
}
build_bug redis-7.0.15-deb12u8-bad redis-7.0.15-deb12u8 redis-7.0.15-deb12u7 \
  "$here/bugs/revert-CVE-2025-67733-function-list.patch"
mv "$out/versions.list.tmp" "$out/versions.list"
say "built $(wc -l < "$out/versions.list") versions in $out"
