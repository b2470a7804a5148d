// Running the pass twice changes nothing more than running it once: one
// registry, one constructor, update points lowered once, locals lowered once.
// RUN: %clang -g -O0 -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o %t.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.ll -o %t.once.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua,mvedsua -S %t.ll -o %t.twice.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.once.ll -o %t.again.ll
// RUN: diff %t.once.ll %t.twice.ll
// Also on its own output, up to comments (the ModuleID on line 1, and the
// order of '; preds' lists, which a reparse does not keep).
// RUN: sed -e 1d -e 's/ *; preds = .*//' %t.once.ll > %t.once.body
// RUN: sed -e 1d -e 's/ *; preds = .*//' %t.again.ll > %t.again.body
// RUN: diff %t.once.body %t.again.body
// RUN: FileCheck %s < %t.twice.ll
#include <mvedsua.h>
int hits;
int main(void) {
  int n = 0;
  MVEDSUA_MIGRATE_LOCAL(n);
  mvedsua_update_point("main");
  return hits + n;
}

// CHECK-COUNT-1: @__mvedsua.module = private constant
// CHECK-NOT:     @__mvedsua.module
// CHECK:         @llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 0, ptr @__mvedsua.register, ptr null }]
// CHECK-LABEL:   define dso_local i32 @main()
// CHECK-COUNT-1: call void @__mvedsua_rt_local_enter(
// CHECK-NOT:     call void @__mvedsua_rt_local_enter(
// CHECK-COUNT-1: load volatile i32, ptr @__mvedsua_update_pending
// CHECK-NOT:     load volatile i32, ptr @__mvedsua_update_pending
// CHECK-COUNT-1: call void @__mvedsua_rt_local_leave(
// CHECK-NOT:     call void @__mvedsua_rt_local_leave(
// CHECK:         define internal void @__mvedsua.register()
// CHECK-NOT:     define internal void @__mvedsua.register
