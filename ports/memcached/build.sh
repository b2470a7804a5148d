#!/usr/bin/env bash
# ports/memcached/build.sh: fetch Debian 12's memcached source package, apply
# the mvedsua port, and build every version listed in versions.txt as an
# updatable shared object, each with the state transformer from the one
# before it. See docs/ports/memcached.md.
#
#   ports/memcached/build.sh [-B MVEDSUA_BUILD_DIR] [-j N]
#
# MVEDSUA_BUILD_DIR is a configured and built mvedsua tree (default ./build);
# its plugin, runtime and mvedsua-xfgen are used. Everything goes under
# MVEDSUA_BUILD_DIR/ports/memcached:
#   src/                the downloaded source package (.dsc, .orig, .debian)
#   tree/NAME/          each version's build tree (configured once, as
#                       Debian does, plus --enable-sasl-pwdb), made from a
#                       copy of the previous one, so a version only compiles
#                       what its patches changed; all rebuilt when
#                       MvedsuaPass.so changed (tree.plugin)
#   NAME.so, NAME.bc    each version, and its bitcode for mvedsua-xfgen
#   NAME.xform.c        the transformer from the previous version
#   versions.list       the names built, oldest first (written last)
#   bugs.list           versions with an injected bug (bugs/): NAME FROM
#
# Environment: MEMCACHED_DEB_VERSION (default 1.6.18-1+deb12u1, the package
# whose debian/patches provide the security fixes), MEMCACHED_DEB_MIRROR
# (default http://deb.debian.org). The machine's apt configuration is not
# touched: apt-get runs with a private sources list and state directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mbuild=$root/build
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    -B) mbuild=$(cd "$2" && pwd); shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

debver=${MEMCACHED_DEB_VERSION:-1.6.18-1+deb12u1}
mirror=${MEMCACHED_DEB_MIRROR:-http://deb.debian.org}
llvm=/usr/lib/llvm-19/bin
plugin=$mbuild/lib/MvedsuaPass.so
xfgen=$mbuild/bin/mvedsua-xfgen
for f in "$plugin" "$mbuild/lib/libmvedsua.so" "$xfgen" "$llvm/clang" "$llvm/llvm-link"; do
  [ -e "$f" ] || { echo "build.sh: $f not found (build mvedsua first)" >&2; exit 1; }
done
for h in /usr/include/event2/event.h /usr/include/sasl/sasl.h /usr/include/openssl/ssl.h; do
  [ -e "$h" ] || { echo "build.sh: $h not found (apt-get install libevent-dev libsasl2-dev libssl-dev)" >&2; exit 1; }
done
out=$mbuild/ports/memcached
mkdir -p "$out"
say() { printf 'memcached-port: %s\n' "$*"; }
. "$here/../lib/debian-source.sh"

# 1. The source package (ports/lib/debian-source.sh), and 2. versions.txt
#    naming every patch of its series exactly once, in order.
debian_source "$out" memcached "$debver" "$mirror"
check_series "$pristine" "$here/versions.txt"

# Nothing to do when every version is newer than everything it is made from.
if [ -f "$out/versions.list" ] &&
   [ -z "$(find "$here" "$plugin" "$mbuild/lib/libmvedsua.so" "$xfgen" "$root/include" \
           -newer "$out/versions.list" -type f | head -1)" ]; then
  say "up to date: $(wc -l < "$out/versions.list") versions in $out"
  exit 0
fi

# 3. Each version: the Debian patches so far + the port, synchronised into
#    the build tree (files whose content changed only), built incrementally.
#    configure's -Werror is left out (clang warns where gcc does not); the
#    plugin is part of CC so that every object and bitcode file gets it.
debtree=$out/debian-tree
stage=$out/stage
rm -rf "$debtree" && cp -a "$pristine" "$debtree"
# Debian configures --enable-sasl --enable-tls; the port adds
# --enable-sasl-pwdb, the password database that the fix of CVE-2026-47783
# and CVE-2026-47784 is in (without it, deb12u1 changes no compiled code).
configure_flags=(--enable-sasl --enable-sasl-pwdb --enable-tls)
plugin_sum="$(md5sum < "$plugin") ${configure_flags[*]}"
if [ "$(cat "$out/tree.plugin" 2>/dev/null)" != "$plugin_sum" ]; then
  rm -rf "$out/tree"
fi
mkdir -p "$out/tree"
echo "$plugin_sum" > "$out/tree.plugin"
cc="$llvm/clang -fpass-plugin=$plugin -I$root/include -fno-eliminate-unused-debug-types"
build_version() { # TREE LOG [XFORM_OBJ]: NAME.so (memcached) and memcached.bc in TREE
  local tree=$1 log=$2 xobj=${3:-}
  local cflags
  cflags=$(sed -n 's/^CFLAGS = //p' "$tree/Makefile" | sed 's/-Werror//')
  rm -f "$tree/memcached"
  make -C "$tree" -j"$jobs" -f Makefile -f "$here/bitcode.mk" memcached memcached.bc \
    CC="$cc" CFLAGS="$cflags" MVEDSUA_LLVM_LINK="$llvm/llvm-link" \
    LDFLAGS="-shared -L$mbuild/lib -Wl,--no-as-needed -lmvedsua $xobj" >> "$log" 2>&1
}
# NAME.so and NAME.bc from TREE; with PREVIOUS, the state transformer from
# it (mvedsua-xfgen on both versions' bitcode) linked in.
make_version() { # NAME TREE [PREVIOUS]
  local name=$1 tree=$2 from=${3:-}
  build_version "$tree" "$out/$name.log" ||
    { echo "build.sh: building $name failed; see $out/$name.log" >&2; tail -20 "$out/$name.log" >&2; exit 1; }
  cp "$tree/memcached.bc" "$out/$name.bc"
  if [ -n "$from" ]; then
    "$xfgen" "$out/$from.bc" "$out/$name.bc" -o "$out/$name.xform.c" > "$out/$name.xfgen.log" 2>&1 ||
      { echo "build.sh: mvedsua-xfgen $from -> $name refused:" >&2; cat "$out/$name.xfgen.log" >&2; exit 1; }
    $cc -g -O2 -fPIC -c "$out/$name.xform.c" -o "$out/$name.xform.o"
    build_version "$tree" "$out/$name.log" "$out/$name.xform.o" ||
      { echo "build.sh: linking $name failed; see $out/$name.log" >&2; exit 1; }
  fi
  cp "$tree/memcached" "$out/$name.so"
}
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
  (cd "$stage" && find . -type f ! -path './debian/*' -print0) |
    while IFS= read -r -d '' f; do
      if ! cmp -s "$stage/$f" "$tree/$f"; then
        mkdir -p "$(dirname "$tree/$f")"
        cp -p "$stage/$f" "$tree/$f"
        # Sources newer than their objects; autotools' inputs keep their
        # time stamps (make would otherwise run automake again).
        case "$f" in *.c|*.h) touch "$tree/$f" ;; esac
      fi
    done
  : > "$out/$name.log"
  if [ ! -f "$tree/Makefile" ]; then
    (cd "$tree" && ./configure CC="$llvm/clang" CFLAGS="-g -O2 -fPIC" "${configure_flags[@]}") \
      >> "$out/$name.log" 2>&1 ||
      { echo "build.sh: configuring $name failed; see $out/$name.log" >&2; exit 1; }
  fi
  make_version "$name" "$tree" "$prev"
  echo "$name" >> "$out/versions.list.tmp"
  prev=$name
done < "$here/versions.txt"

# 4. Versions with an injected bug, for the multi-version test (never part of
#    the chain): bugs/NAME.patch applied to a copy of a version's tree and
#    built like the others, with the transformer from the version before it.
#      memcached-1.6.18-1+deb12u1-bad  deb12u1 whose fix of CVE-2026-47784
#                                      accepts a prefix of a SASL password
#                                      (updated to from deb12u1: the two
#                                      read the password file alike)
rm -f "$out/bugs.list"
build_bug() { # NAME BASE PREVIOUS PATCH
  local name=$1 base=$2 prevv=$3 p=$4 tree=$out/tree/$1
  say "$name (injected bug: $(basename "$p"))"
  rm -rf "$tree" && cp -a "$out/tree/$base" "$tree"
  patch -d "$tree" -p1 -s -N --no-backup-if-mismatch < "$p" ||
    { echo "build.sh: $(basename "$p") does not apply to $base" >&2; exit 1; }
  : > "$out/$name.log"
  make_version "$name" "$tree" "$prevv"
  echo "$name $prevv" >> "$out/bugs.list"
}
build_bug memcached-1.6.18-1+deb12u1-bad memcached-1.6.18-1+deb12u1 memcached-1.6.18-1+deb12u1 \
  "$here/bugs/broken-CVE-2026-47784-password-prefix.patch"

# 5. memcached's own test suite (t/*.t) asks a memcached-debug binary what
#    the build supports (-h): built in the last version's tree, without the
#    plugin (it never runs a server here: t-updated.sh points the tests at
#    an updated one).
last=$(tail -1 "$out/versions.list.tmp")
cflags=$(sed -n 's/^CFLAGS = //p' "$out/tree/$last/Makefile" | sed 's/-Werror//')
make -C "$out/tree/$last" -j"$jobs" memcached-debug CC="$llvm/clang" \
  CFLAGS="$cflags -I$root/include" >> "$out/$last.log" 2>&1 ||
  { echo "build.sh: building memcached-debug failed; see $out/$last.log" >&2; exit 1; }
mv "$out/versions.list.tmp" "$out/versions.list"
say "built $(wc -l < "$out/versions.list") versions in $out"
