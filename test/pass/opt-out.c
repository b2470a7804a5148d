// A function declared MVEDSUA_NO_INSTRUMENT keeps its call to
// mvedsua_update_point (and so the header's wrapper stays); runtime-internal
// functions (__mvedsua*) are never instrumented, while an ordinary function
// in the same module is.
// RUN: %clang -g -O0 -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o %t.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.ll | FileCheck %s
#include <mvedsua.h>

void quiet(void) MVEDSUA_NO_INSTRUMENT;
void quiet(void) { mvedsua_update_point("quiet"); }

void __mvedsua_helper(void) { mvedsua_update_point("internal"); }

void loud(void) { mvedsua_update_point("loud"); }

// CHECK-NOT: @__mvedsua.point.quiet
// CHECK-NOT: @__mvedsua.point.internal
// CHECK-LABEL: define dso_local void @quiet()
// CHECK-NEXT:    call void @mvedsua_update_point(ptr noundef @.str)
// CHECK-NEXT:    ret void
// CHECK-LABEL: define internal void @mvedsua_update_point(
// CHECK-LABEL: define dso_local void @__mvedsua_helper()
// CHECK-NEXT:    call void @mvedsua_update_point(ptr noundef @.str.1)
// CHECK-NEXT:    ret void
// CHECK-LABEL: define dso_local void @loud()
// CHECK-NEXT:    load volatile i32, ptr @__mvedsua_update_pending
// CHECK-NOT:   define
// CHECK:         call void @__mvedsua_update_point.loud()
// CHECK-NOT:   @__mvedsua_update_point.quiet
// CHECK-NOT:   @__mvedsua_update_point.internal
