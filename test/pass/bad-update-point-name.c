// The name of an update point must be a string literal: a variable is an
// error naming file:line:col and the function.
// RUN: not %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null 2>&1 | FileCheck %s
// Through opt as well (-O0 IR without optimisation: the name is a load).
// RUN: %clang -g -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o %t.ll
// RUN: not %opt -load-pass-plugin=%plugin -passes=mvedsua -disable-output %t.ll 2>&1 | FileCheck %s
#include <mvedsua.h>
void serve(const char *name_variable) {
  mvedsua_update_point(name_variable);
}
// CHECK: error: mvedsua: {{.*}}bad-update-point-name.c:9:3: in 'serve': mvedsua_update_point needs a string literal as its name (names must be known at compile time)
