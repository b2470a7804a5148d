; Lowering of mvedsua_update_point("x"): each call becomes a volatile load of
; the runtime flag, a compare and a branch weighted as never taken, to a block
; that calls a cold, out-of-line __mvedsua_update_point.<name>, which passes
; the interned name to __mvedsua_rt_update_point_slow. One interned name and
; one slow path per distinct name, however many calls use it; the header's
; wrapper is gone afterwards.
;
; IR from (clang -g -O0 -S -emit-llvm -Xclang -disable-llvm-passes, trimmed):
;   #include <mvedsua.h>
;   int served;
;   void serve(void) {
;     mvedsua_update_point("loop");
;     served++;
;     mvedsua_update_point("loop");
;   }
;   void idle(void) { mvedsua_update_point("idle"); }
;
; RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %s \
; RUN:   | FileCheck %s --implicit-check-not="@mvedsua_update_point" \
; RUN:                  --implicit-check-not="call void @__mvedsua_rt_update_point("
; RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %s \
; RUN:   | grep '^@__mvedsua.point' | count 2
; RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %s \
; RUN:   | grep '^define internal void @__mvedsua_update_point\.' | count 2

; CHECK: @__mvedsua_update_pending = external global i32
; CHECK: @[[LOOP:__mvedsua.point.loop]] = private unnamed_addr constant [5 x i8] c"loop\00", align 1
; CHECK-NEXT: @[[IDLE:__mvedsua.point.idle]] = private unnamed_addr constant [5 x i8] c"idle\00", align 1

; CHECK-LABEL: define dso_local void @serve()
; CHECK-NEXT:    %mvedsua.pending = load volatile i32, ptr @__mvedsua_update_pending, align 4, !dbg [[LOC1:![0-9]+]]
; CHECK-NEXT:    %mvedsua.stop = icmp ne i32 %mvedsua.pending, 0
; CHECK-NEXT:    br i1 %mvedsua.stop, label %mvedsua.update, label %[[CONT1:[0-9]+]], !dbg [[LOC1]], !prof [[UNLIKELY:![0-9]+]]
; CHECK-EMPTY:
; CHECK-NEXT:  mvedsua.update:
; CHECK-NEXT:    call void @[[SLOWLOOP:__mvedsua_update_point.loop]](), !dbg [[LOC1]]
; CHECK-NEXT:    br label %[[CONT1]]
; CHECK-EMPTY:
; CHECK-NEXT:  [[CONT1]]:
; CHECK-NEXT:    load i32, ptr @served
; CHECK-NEXT:    add nsw i32
; CHECK-NEXT:    store i32
; CHECK-NEXT:    %mvedsua.pending1 = load volatile i32, ptr @__mvedsua_update_pending, align 4, !dbg [[LOC2:![0-9]+]]
; CHECK-NEXT:    %mvedsua.stop2 = icmp ne i32 %mvedsua.pending1, 0
; CHECK-NEXT:    br i1 %mvedsua.stop2, label %mvedsua.update3, label %[[CONT2:[0-9]+]], !dbg [[LOC2]], !prof [[UNLIKELY]]
; CHECK-EMPTY:
; CHECK-NEXT:  mvedsua.update3:
; CHECK-NEXT:    call void @[[SLOWLOOP]](), !dbg [[LOC2]]
; CHECK-NEXT:    br label %[[CONT2]]
; CHECK-EMPTY:
; CHECK-NEXT:  [[CONT2]]:
; CHECK-NEXT:    ret void

; CHECK-LABEL: define dso_local void @idle()
; CHECK-NEXT:    %mvedsua.pending = load volatile i32, ptr @__mvedsua_update_pending, align 4
; CHECK-NEXT:    %mvedsua.stop = icmp ne i32 %mvedsua.pending, 0
; CHECK-NEXT:    br i1 %mvedsua.stop, label %mvedsua.update, label %[[CONT3:[0-9]+]], !dbg {{![0-9]+}}, !prof [[UNLIKELY]]
; CHECK-EMPTY:
; CHECK-NEXT:  mvedsua.update:
; CHECK-NEXT:    call void @[[SLOWIDLE:__mvedsua_update_point.idle]]()
; CHECK-NEXT:    br label %[[CONT3]]

; CHECK: declare void @__mvedsua_rt_update_point_slow(ptr)

; CHECK: ; Function Attrs: cold noinline optsize
; CHECK-NEXT: define internal void @[[SLOWLOOP]]() [[COLD:#[0-9]+]] {
; CHECK-NEXT: entry:
; CHECK-NEXT:   call void @__mvedsua_rt_update_point_slow(ptr @[[LOOP]])
; CHECK-NEXT:   ret void
; CHECK-NEXT: }

; CHECK: ; Function Attrs: cold noinline optsize
; CHECK-NEXT: define internal void @[[SLOWIDLE]]() [[COLD]] {
; CHECK-NEXT: entry:
; CHECK-NEXT:   call void @__mvedsua_rt_update_point_slow(ptr @[[IDLE]])
; CHECK-NEXT:   ret void
; CHECK-NEXT: }

; CHECK: attributes [[COLD]] = { cold noinline optsize }
; The update is the true edge: weight 1 against LLVM's unlikely weight.
; CHECK: [[LOC1]] = !DILocation(line: 4, column: 3,
; CHECK: [[UNLIKELY]] = !{!"branch_weights", i32 1, i32 1048575}
; CHECK: [[LOC2]] = !DILocation(line: 6, column: 3,

source_filename = "up.c"
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

@.str = private unnamed_addr constant [5 x i8] c"loop\00", align 1, !dbg !0
@served = dso_local global i32 0, align 4, !dbg !7
@.str.1 = private unnamed_addr constant [5 x i8] c"idle\00", align 1, !dbg !11

define dso_local void @serve() #0 !dbg !22 {
  call void @mvedsua_update_point(ptr noundef @.str), !dbg !25
  %1 = load i32, ptr @served, align 4, !dbg !26
  %2 = add nsw i32 %1, 1, !dbg !26
  store i32 %2, ptr @served, align 4, !dbg !26
  call void @mvedsua_update_point(ptr noundef @.str), !dbg !27
  ret void, !dbg !28
}

define internal void @mvedsua_update_point(ptr noundef %0) #0 !dbg !29 {
  %2 = alloca ptr, align 8
  store ptr %0, ptr %2, align 8
    #dbg_declare(ptr %2, !36, !DIExpression(), !37)
  %3 = icmp ne ptr @__mvedsua_rt_update_point, null, !dbg !38
  br i1 %3, label %4, label %6, !dbg !40

4:                                                ; preds = %1
  %5 = load ptr, ptr %2, align 8, !dbg !41
  call void @__mvedsua_rt_update_point(ptr noundef %5), !dbg !42
  br label %6, !dbg !42

6:                                                ; preds = %4, %1
  ret void, !dbg !43
}

define dso_local void @idle() #0 !dbg !44 {
  call void @mvedsua_update_point(ptr noundef @.str.1), !dbg !45
  ret void, !dbg !46
}

declare extern_weak void @__mvedsua_rt_update_point(ptr noundef) #1

attributes #0 = { noinline nounwind optnone uwtable }
attributes #1 = { nounwind }

!llvm.dbg.cu = !{!9}
!llvm.module.flags = !{!14, !15, !16, !17, !18, !19, !20}

!0 = !DIGlobalVariableExpression(var: !1, expr: !DIExpression())
!1 = distinct !DIGlobalVariable(scope: null, file: !2, line: 4, type: !3, isLocal: true, isDefinition: true)
!2 = !DIFile(filename: "up.c", directory: "/src")
!3 = !DICompositeType(tag: DW_TAG_array_type, baseType: !4, size: 40, elements: !5)
!4 = !DIBasicType(name: "char", size: 8, encoding: DW_ATE_signed_char)
!5 = !{!6}
!6 = !DISubrange(count: 5)
!7 = !DIGlobalVariableExpression(var: !8, expr: !DIExpression())
!8 = distinct !DIGlobalVariable(name: "served", scope: !9, file: !2, line: 2, type: !13, isLocal: false, isDefinition: true)
!9 = distinct !DICompileUnit(language: DW_LANG_C11, file: !2, producer: "clang version 19.1.7", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug, globals: !10, splitDebugInlining: false, nameTableKind: None)
!10 = !{!0, !11, !7}
!11 = !DIGlobalVariableExpression(var: !12, expr: !DIExpression())
!12 = distinct !DIGlobalVariable(scope: null, file: !2, line: 8, type: !3, isLocal: true, isDefinition: true)
!13 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!14 = !{i32 7, !"Dwarf Version", i32 5}
!15 = !{i32 2, !"Debug Info Version", i32 3}
!16 = !{i32 1, !"wchar_size", i32 4}
!17 = !{i32 8, !"PIC Level", i32 2}
!18 = !{i32 7, !"PIE Level", i32 2}
!19 = !{i32 7, !"uwtable", i32 2}
!20 = !{i32 7, !"frame-pointer", i32 2}
!22 = distinct !DISubprogram(name: "serve", scope: !2, file: !2, line: 3, type: !23, scopeLine: 3, flags: DIFlagPrototyped, spFlags: DISPFlagDefinition, unit: !9)
!23 = !DISubroutineType(types: !24)
!24 = !{null}
!25 = !DILocation(line: 4, column: 3, scope: !22)
!26 = !DILocation(line: 5, column: 9, scope: !22)
!27 = !DILocation(line: 6, column: 3, scope: !22)
!28 = !DILocation(line: 7, column: 1, scope: !22)
!29 = distinct !DISubprogram(name: "mvedsua_update_point", scope: !30, file: !30, line: 39, type: !31, scopeLine: 39, flags: DIFlagPrototyped, spFlags: DISPFlagLocalToUnit | DISPFlagDefinition, unit: !9, retainedNodes: !35)
!30 = !DIFile(filename: "/src/include/mvedsua.h", directory: "")
!31 = !DISubroutineType(types: !32)
!32 = !{null, !33}
!33 = !DIDerivedType(tag: DW_TAG_pointer_type, baseType: !34, size: 64)
!34 = !DIDerivedType(tag: DW_TAG_const_type, baseType: !4)
!35 = !{}
!36 = !DILocalVariable(name: "name", arg: 1, scope: !29, file: !30, line: 39, type: !33)
!37 = !DILocation(line: 39, column: 53, scope: !29)
!38 = !DILocation(line: 40, column: 7, scope: !39)
!39 = distinct !DILexicalBlock(scope: !29, file: !30, line: 40, column: 7)
!40 = !DILocation(line: 40, column: 7, scope: !29)
!41 = !DILocation(line: 41, column: 31, scope: !39)
!42 = !DILocation(line: 41, column: 5, scope: !39)
!43 = !DILocation(line: 42, column: 1, scope: !29)
!44 = distinct !DISubprogram(name: "idle", scope: !2, file: !2, line: 8, type: !23, scopeLine: 8, flags: DIFlagPrototyped, spFlags: DISPFlagDefinition, unit: !9)
!45 = !DILocation(line: 8, column: 19, scope: !44)
!46 = !DILocation(line: 8, column: 49, scope: !44)
