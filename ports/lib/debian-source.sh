# ports/lib/debian-source.sh: what every port's build.sh does with Debian's
# source package, sourced by them (they define `say`).
#
#   debian_source OUT PACKAGE DEBVER MIRROR
#       sets $dsc and $pristine: the .dsc under OUT/src (downloaded if
#       missing, through apt with private state: signatures and checksums
#       checked by apt against Debian's archive keyring; the machine's apt
#       configuration is not touched) and the package unpacked without its
#       patches in OUT/pristine-VERSION
#   check_series PRISTINE VERSIONS_TXT
#       versions.txt must name every patch of debian/patches/series exactly
#       once, in order; sets $listed (the patches, in order)

debian_source() {
  local out=$1 package=$2 debver=$3 mirror=$4
  local upver=${debver#*:} # without the epoch
  dsc=$out/src/${package}_${upver}.dsc
  if [ ! -f "$dsc" ]; then
    say "fetching $package $debver from $mirror"
    local apt=$out/apt key=/usr/share/keyrings/debian-archive-keyring.gpg
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" \
             "$apt/etc/sources.list.d" "$apt/etc/preferences.d" "$out/src"
    cat > "$apt/etc/sources.list" <<EOS
deb-src [signed-by=$key] $mirror/debian bookworm main
deb-src [signed-by=$key] $mirror/debian-security bookworm-security main
EOS
    local aptopts=(-o "Dir::Etc::sourcelist=$apt/etc/sources.list"
                   -o "Dir::Etc::sourceparts=$apt/etc/sources.list.d"
                   -o "Dir::Etc::preferencesparts=$apt/etc/preferences.d"
                   -o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists"
                   -o "Dir::Cache=$apt/cache" -o "Debug::NoLocking=1"
                   -o "APT::Sandbox::User=root")
    apt-get "${aptopts[@]}" -qq update
    (cd "$out/src" && apt-get "${aptopts[@]}" -qq source --download-only "$package=$debver")
    [ -f "$dsc" ] || { echo "build.sh: apt-get did not download $dsc" >&2; exit 1; }
  fi
  pristine=$out/pristine-$upver
  if [ ! -d "$pristine" ]; then
    say "unpacking $dsc"
    rm -rf "$pristine.tmp"
    # (apt checked the files against the archive's signed index; the .dsc's
    # own signature is the uploader's, whose key is not on a plain system.)
    dpkg-source --skip-patches -x "$dsc" "$pristine.tmp" > "$out/dpkg-source.log" 2>&1 ||
      { cat "$out/dpkg-source.log" >&2; exit 1; }
    mv "$pristine.tmp" "$pristine"
  fi
}

check_series() {
  local pristine=$1 versions=$2 series
  series=$(grep -v '^\s*#' "$pristine/debian/patches/series" | sed '/^\s*$/d')
  listed=$(grep -v '^\s*#' "$versions" | sed '/^\s*$/d' |
           awk '{for (i = 2; i <= NF; i++) print $i}')
  if [ "$series" != "$listed" ]; then
    echo "build.sh: $versions does not list the patches of debian/patches/series in order:" >&2
    diff <(echo "$series") <(echo "$listed") >&2 || true
    exit 1
  fi
}
