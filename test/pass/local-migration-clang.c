// MVEDSUA_MIGRATE_LOCAL through clang: at -O0, at -O2 (the lowered calls
// survive the optimiser, and the local stays in memory), and on IR where
// assignment tracking has replaced the local's dbg.declare by dbg.assign
// markers (what clang does from -O1 on), which the pass must still read.
// RUN: %clang -g -O0 -S -emit-llvm -fpass-plugin=%plugin %mvedsua_cflags %s -o - \
// RUN:   | FileCheck %s --check-prefixes=CHECK,O0
// RUN: %clang -g -O2 -S -emit-llvm -fpass-plugin=%plugin %mvedsua_cflags %s -o - \
// RUN:   | FileCheck %s --check-prefixes=CHECK,O2
// RUN: %clang -g -O2 -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o - \
// RUN:   | %opt -passes='function(declare-to-assign)' -S -o %t.assign.ll
// RUN: FileCheck %s --check-prefix=TRACKED < %t.assign.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.assign.ll \
// RUN:   | FileCheck %s --check-prefix=ASSIGN
#include <mvedsua.h>
int work(int);
int serve(int fd) {
  int served = work(fd);
  MVEDSUA_MIGRATE_LOCAL(served);
  if (served > 100)
    return served;
  mvedsua_update_point("serve");
  return -served;
}

// CHECK-NOT: call {{.*}}@__mvedsua_migrate_local(
// CHECK:     @__mvedsua.str{{[.0-9]*}} = private unnamed_addr constant [37 x i8] c"local-migration-clang.c/serve#served\00"
// CHECK-LABEL: define {{.*}}i32 @serve(
// CHECK:       call i32 @work(
// CHECK-NEXT:  store i32 %{{[0-9]+}}, ptr %[[SERVED:[0-9]+]]
// O0-NEXT:          call void @__mvedsua_rt_local_enter(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1), ptr %[[SERVED]])
// O2-NEXT:     #dbg_assign(i32 %{{[0-9]+}}, !{{[0-9]+}}, !DIExpression(), !{{[0-9]+}}, ptr %[[SERVED]],
// O2-NEXT:     call void @__mvedsua_rt_local_enter(ptr nonnull getelementptr inbounds (i8, ptr @__mvedsua.entries, i64 56), ptr nonnull %[[SERVED]])
// CHECK:       load volatile i32, ptr @__mvedsua_update_pending
// O0:          call void @__mvedsua_rt_local_leave(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1))
// O2:          call void @__mvedsua_rt_local_leave(ptr nonnull getelementptr inbounds (i8, ptr @__mvedsua.entries, i64 56))
// CHECK-NEXT:  ret i32
// CHECK-NOT:   ret
// CHECK:       }

// The input really carries dbg.assign for 'served' and no dbg.declare.
// TRACKED-LABEL: define {{.*}}i32 @serve(
// TRACKED-NOT:   #dbg_declare
// TRACKED:       #dbg_assign(i1 undef, ![[FD:[0-9]+]],
// TRACKED:       #dbg_assign(i1 undef, ![[VAR:[0-9]+]], !DIExpression(), !{{[0-9]+}}, ptr %[[SERVED:[0-9]+]],
// TRACKED-NOT:   #dbg_declare
// TRACKED:       call void @__mvedsua_migrate_local(ptr noundef @{{.*}}, ptr noundef %[[SERVED]], i64 noundef 4)
// TRACKED:       ![[FD]] = !DILocalVariable(name: "fd"
// TRACKED:       ![[VAR]] = !DILocalVariable(name: "served"

// ASSIGN:     @[[KEY:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [37 x i8] c"local-migration-clang.c/serve#served\00"
// ASSIGN:     @__mvedsua.entries = {{.*}} { ptr @[[KEY]], ptr null, i64 4, ptr @{{__mvedsua\.type[.0-9]*}}, i32 3, i32 0, i32 0, i32 17, ptr null }]
// ASSIGN-LABEL: define {{.*}}i32 @serve(
// ASSIGN:       call i32 @work(
// ASSIGN-NEXT:  store i32 %{{[0-9]+}}, ptr %[[SERVED:[0-9]+]]
// ASSIGN-NEXT:  #dbg_assign(i32 %{{[0-9]+}}, !{{[0-9]+}}, !DIExpression(), !{{[0-9]+}}, ptr %[[SERVED]],
// ASSIGN-NEXT:  call void @__mvedsua_rt_local_enter(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1), ptr %[[SERVED]])
// ASSIGN:       call void @__mvedsua_rt_local_leave(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1))
// ASSIGN-NEXT:  ret i32
