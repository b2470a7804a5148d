// A thread-local variable cannot be migrated: an error unless it is marked
// MVEDSUA_NO_MIGRATE, in which case it is accepted and not registered.
// RUN: not %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=ERR
// RUN: %clang -g -O0 -S -emit-llvm -fpass-plugin=%plugin %mvedsua_cflags -DFIXED %s -o - | FileCheck %s
#include <mvedsua.h>
#ifndef FIXED
__thread int per_thread;
#endif
__thread int fresh_per_thread MVEDSUA_NO_MIGRATE;
int shared;
int main(void) { return fresh_per_thread + shared; }

// ERR: error: mvedsua: {{.*}}thread-local.c:7: thread-local variable 'per_thread' cannot be migrated (each thread has its own copy); mark it MVEDSUA_NO_MIGRATE to start it fresh in every version
// ERR-NEXT: 1 error generated.

// CHECK: @fresh_per_thread = dso_local thread_local global i32 0
// CHECK-NOT: c"fresh_per_thread\00"
// CHECK: c"shared\00"
// CHECK-NOT: c"fresh_per_thread\00"
// CHECK: @__mvedsua.entries = private constant [2 x %struct.mvedsua_entry]
// CHECK-SAME: ptr @shared
// CHECK-SAME: ptr @main
// CHECK-NOT: @fresh_per_thread
// CHECK: @__mvedsua.module
