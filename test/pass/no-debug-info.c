// Without -g the registry cannot be built (types and annotations come from
// debug info): the pass stops with an error telling to add -g, instead of
// silently dropping annotations. With -g the same file compiles.
// RUN: not %clang -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null 2>&1 | FileCheck %s
// RUN: not %clang -O2 -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null 2>&1 | FileCheck %s
// RUN: %clang -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o %t.ll
// RUN: not %opt -load-pass-plugin=%plugin -passes=mvedsua -disable-output %t.ll 2>&1 | FileCheck %s
// RUN: %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null
#include <mvedsua.h>
int counter MVEDSUA_NO_MIGRATE;
int main(void) {
  mvedsua_update_point("main");
  return counter;
}
// CHECK: error: mvedsua: {{.*}}no-debug-info.c: no debug info: mvedsua builds the state registry's type descriptors from it and reads annotations from it; compile with -g
