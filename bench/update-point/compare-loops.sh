#!/usr/bin/env bash
# compare-loops.sh CLANG PLUGIN INCLUDE_DIR SOURCE: compiles SOURCE at -O2 -fPIC
# with and without MvedsuaPass and compares the machine code of every function
# (instructions with operands; addresses and the alignment padding between
# functions stripped, since the registry shifts what follows). Prints a JSON object;
# exits 1 if any function differs.
set -euo pipefail
clang=$1 plugin=$2 inc=$3 src=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
objdump=$(dirname "$clang")/llvm-objdump
"$clang" -g -O2 -fPIC -I"$inc" -c "$src" -o "$tmp/plain.o"
"$clang" -g -O2 -fPIC -I"$inc" -fpass-plugin="$plugin" -c "$src" -o "$tmp/plugin.o"
funcs=$(nm --defined-only "$tmp/plain.o" | awk '$2 == "T" { print $3 }')
same=0 differ=0 names=()
for f in $funcs; do
  for v in plain plugin; do
    "$objdump" -d --no-show-raw-insn --no-leading-addr --disassemble-symbols="$f" \
      "$tmp/$v.o" | sed -n '/^<'"$f"'>:/,$p' | sed 's/<[^>]*>//g' | grep -v '^[[:space:]]*nop' > "$tmp/$v.$f.s"
  done
  if cmp -s "$tmp/plain.$f.s" "$tmp/plugin.$f.s"; then
    same=$((same + 1))
  else
    differ=$((differ + 1)); names+=("$f")
  fi
done
printf '{"functions": %d, "identical": %d, "different": [%s]}\n' \
  $((same + differ)) "$same" "$(printf '"%s",' "${names[@]:-}" | sed 's/,$//;s/^""$//')"
[ "$differ" -eq 0 ]
