; MVEDSUA_MIGRATE_LOCAL(served) becomes __mvedsua_rt_local_enter on the
; local's registry entry (kind 3 LOCAL, no address, key file/function#var,
; its type and size) and the local's alloca, with __mvedsua_rt_local_leave on
; the same entry before every return of the function (two here).
;
; IR from (clang -g -O0 -S -emit-llvm -Xclang -disable-llvm-passes, trimmed;
; the first return made direct so that the function has two):
;   #include <mvedsua.h>
;   int work(int);
;   int serve(int fd) {
;     int served = work(fd);
;     MVEDSUA_MIGRATE_LOCAL(served);
;     if (served > 100)
;       return served;
;     return -served;
;   }
;
; RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %s \
; RUN:   | FileCheck %s --implicit-check-not=__mvedsua_migrate_local \
; RUN:                  --implicit-check-not="call void @__mvedsua_rt_migrate_local"

; CHECK-DAG: @[[KEY:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [18 x i8] c"lm.c/serve#served\00"
; CHECK-DAG: @[[T_INT:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 1, i32 0, i64 4, i64 0, i64 {{-?[0-9]+}}, ptr @{{__mvedsua\.str[.0-9]*}}, ptr null, ptr null }
; CHECK-LABEL: @__mvedsua.entries = private constant [2 x %struct.mvedsua_entry]
; CHECK-SAME: %struct.mvedsua_entry { ptr @{{__mvedsua\.str[.0-9]*}}, ptr @serve, i64 0, ptr null, i32 4, i32 0, i32 0, i32 3, ptr null },
; CHECK-SAME: %struct.mvedsua_entry { ptr @[[KEY]], ptr null, i64 4, ptr @[[T_INT]], i32 3, i32 0, i32 0, i32 4, ptr null }]

; CHECK-LABEL: define dso_local i32 @serve(
; CHECK:         #dbg_declare(ptr %{{[0-9]+}}, ![[FD:[0-9]+]],
; CHECK-NEXT:    #dbg_declare(ptr %[[SERVED:[0-9]+]], ![[VAR:[0-9]+]],
; CHECK:         store i32 %{{[0-9]+}}, ptr %[[SERVED]]
; CHECK-NEXT:    call void @__mvedsua_rt_local_enter(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1), ptr %[[SERVED]]), !dbg [[MARK:![0-9]+]]
; CHECK-NEXT:    load i32, ptr %[[SERVED]]
; CHECK:         %[[R1:[0-9]+]] = load i32, ptr %[[SERVED]]
; CHECK-NEXT:    call void @__mvedsua_rt_local_leave(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1)), !dbg [[RET1:![0-9]+]]
; CHECK-NEXT:    ret i32 %[[R1]], !dbg [[RET1]]
; CHECK:         sub nsw i32 0,
; CHECK:         %[[R2:[0-9]+]] = load i32, ptr
; CHECK-NEXT:    call void @__mvedsua_rt_local_leave(ptr getelementptr inbounds ([2 x %struct.mvedsua_entry], ptr @__mvedsua.entries, i64 0, i64 1)), !dbg [[RET2:![0-9]+]]
; CHECK-NEXT:    ret i32 %[[R2]], !dbg [[RET2]]
; CHECK-NEXT:  }

; CHECK: declare void @__mvedsua_rt_local_enter(ptr, ptr)
; CHECK: declare void @__mvedsua_rt_local_leave(ptr)
; CHECK: ![[FD]] = !DILocalVariable(name: "fd",
; CHECK: ![[VAR]] = !DILocalVariable(name: "served",
; CHECK: [[MARK]] = !DILocation(line: 5, column: 3,

source_filename = "lm.c"
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

@.str = private unnamed_addr constant [7 x i8] c"served\00", align 1, !dbg !0

define dso_local i32 @serve(i32 noundef %0) #0 !dbg !19 {
  %2 = alloca i32, align 4
  %3 = alloca i32, align 4
  %4 = alloca i32, align 4
  store i32 %0, ptr %3, align 4
    #dbg_declare(ptr %3, !24, !DIExpression(), !25)
    #dbg_declare(ptr %4, !26, !DIExpression(), !27)
  %5 = load i32, ptr %3, align 4, !dbg !28
  %6 = call i32 @work(i32 noundef %5), !dbg !29
  store i32 %6, ptr %4, align 4, !dbg !27
  call void @__mvedsua_migrate_local(ptr noundef @.str, ptr noundef %4, i64 noundef 4), !dbg !30
  %7 = load i32, ptr %4, align 4, !dbg !31
  %8 = icmp sgt i32 %7, 100, !dbg !33
  br i1 %8, label %9, label %11, !dbg !34

9:                                                ; preds = %1
  %10 = load i32, ptr %4, align 4, !dbg !35
  ret i32 %10, !dbg !36

11:                                               ; preds = %1
  %12 = load i32, ptr %4, align 4, !dbg !37
  %13 = sub nsw i32 0, %12, !dbg !38
  store i32 %13, ptr %2, align 4, !dbg !39
  br label %14, !dbg !39

14:                                               ; preds = %11
  %15 = load i32, ptr %2, align 4, !dbg !40
  ret i32 %15, !dbg !40
}

declare i32 @work(i32 noundef) #1

define internal void @__mvedsua_migrate_local(ptr noundef %0, ptr noundef %1, i64 noundef %2) #0 !dbg !41 {
  %4 = alloca ptr, align 8
  %5 = alloca ptr, align 8
  %6 = alloca i64, align 8
  store ptr %0, ptr %4, align 8
    #dbg_declare(ptr %4, !48, !DIExpression(), !49)
  store ptr %1, ptr %5, align 8
    #dbg_declare(ptr %5, !50, !DIExpression(), !51)
  store i64 %2, ptr %6, align 8
    #dbg_declare(ptr %6, !52, !DIExpression(), !53)
  %7 = icmp ne ptr @__mvedsua_rt_migrate_local, null, !dbg !54
  br i1 %7, label %8, label %12, !dbg !56

8:                                                ; preds = %3
  %9 = load ptr, ptr %4, align 8, !dbg !57
  %10 = load ptr, ptr %5, align 8, !dbg !58
  %11 = load i64, ptr %6, align 8, !dbg !59
  call void @__mvedsua_rt_migrate_local(ptr noundef %9, ptr noundef %10, i64 noundef %11), !dbg !60
  br label %12, !dbg !60

12:                                               ; preds = %8, %3
  ret void, !dbg !61
}

declare extern_weak void @__mvedsua_rt_migrate_local(ptr noundef, ptr noundef, i64 noundef) #1

attributes #0 = { noinline nounwind optnone uwtable }
attributes #1 = { nounwind }

!llvm.dbg.cu = !{!7}
!llvm.module.flags = !{!11, !12, !13, !14, !15, !16, !17}

!0 = !DIGlobalVariableExpression(var: !1, expr: !DIExpression())
!1 = distinct !DIGlobalVariable(scope: null, file: !2, line: 5, type: !3, isLocal: true, isDefinition: true)
!2 = !DIFile(filename: "lm.c", directory: "/src")
!3 = !DICompositeType(tag: DW_TAG_array_type, baseType: !4, size: 56, elements: !5)
!4 = !DIBasicType(name: "char", size: 8, encoding: DW_ATE_signed_char)
!5 = !{!6}
!6 = !DISubrange(count: 7)
!7 = distinct !DICompileUnit(language: DW_LANG_C11, file: !2, producer: "clang version 19.1.7", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug, retainedTypes: !8, globals: !10, splitDebugInlining: false, nameTableKind: None)
!8 = !{!9}
!9 = !DIDerivedType(tag: DW_TAG_pointer_type, baseType: null, size: 64)
!10 = !{!0}
!11 = !{i32 7, !"Dwarf Version", i32 5}
!12 = !{i32 2, !"Debug Info Version", i32 3}
!13 = !{i32 1, !"wchar_size", i32 4}
!14 = !{i32 8, !"PIC Level", i32 2}
!15 = !{i32 7, !"PIE Level", i32 2}
!16 = !{i32 7, !"uwtable", i32 2}
!17 = !{i32 7, !"frame-pointer", i32 2}
!19 = distinct !DISubprogram(name: "serve", scope: !2, file: !2, line: 3, type: !20, scopeLine: 3, flags: DIFlagPrototyped, spFlags: DISPFlagDefinition, unit: !7, retainedNodes: !23)
!20 = !DISubroutineType(types: !21)
!21 = !{!22, !22}
!22 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!23 = !{}
!24 = !DILocalVariable(name: "fd", arg: 1, scope: !19, file: !2, line: 3, type: !22)
!25 = !DILocation(line: 3, column: 15, scope: !19)
!26 = !DILocalVariable(name: "served", scope: !19, file: !2, line: 4, type: !22)
!27 = !DILocation(line: 4, column: 7, scope: !19)
!28 = !DILocation(line: 4, column: 21, scope: !19)
!29 = !DILocation(line: 4, column: 16, scope: !19)
!30 = !DILocation(line: 5, column: 3, scope: !19)
!31 = !DILocation(line: 6, column: 7, scope: !32)
!32 = distinct !DILexicalBlock(scope: !19, file: !2, line: 6, column: 7)
!33 = !DILocation(line: 6, column: 14, scope: !32)
!34 = !DILocation(line: 6, column: 7, scope: !19)
!35 = !DILocation(line: 7, column: 12, scope: !32)
!36 = !DILocation(line: 7, column: 5, scope: !32)
!37 = !DILocation(line: 8, column: 11, scope: !19)
!38 = !DILocation(line: 8, column: 10, scope: !19)
!39 = !DILocation(line: 8, column: 3, scope: !19)
!40 = !DILocation(line: 9, column: 1, scope: !19)
!41 = distinct !DISubprogram(name: "__mvedsua_migrate_local", scope: !42, file: !42, line: 77, type: !43, scopeLine: 78, flags: DIFlagPrototyped, spFlags: DISPFlagLocalToUnit | DISPFlagDefinition, unit: !7, retainedNodes: !23)
!42 = !DIFile(filename: "/src/include/mvedsua.h", directory: "")
!43 = !DISubroutineType(types: !44)
!44 = !{null, !45, !9, !47}
!45 = !DIDerivedType(tag: DW_TAG_pointer_type, baseType: !46, size: 64)
!46 = !DIDerivedType(tag: DW_TAG_const_type, baseType: !4)
!47 = !DIBasicType(name: "unsigned long", size: 64, encoding: DW_ATE_unsigned)
!48 = !DILocalVariable(name: "name", arg: 1, scope: !41, file: !42, line: 77, type: !45)
!49 = !DILocation(line: 77, column: 56, scope: !41)
!50 = !DILocalVariable(name: "addr", arg: 2, scope: !41, file: !42, line: 77, type: !9)
!51 = !DILocation(line: 77, column: 68, scope: !41)
!52 = !DILocalVariable(name: "size", arg: 3, scope: !41, file: !42, line: 78, type: !47)
!53 = !DILocation(line: 78, column: 58, scope: !41)
!54 = !DILocation(line: 79, column: 7, scope: !55)
!55 = distinct !DILexicalBlock(scope: !41, file: !42, line: 79, column: 7)
!56 = !DILocation(line: 79, column: 7, scope: !41)
!57 = !DILocation(line: 80, column: 32, scope: !55)
!58 = !DILocation(line: 80, column: 38, scope: !55)
!59 = !DILocation(line: 80, column: 44, scope: !55)
!60 = !DILocation(line: 80, column: 5, scope: !55)
!61 = !DILocation(line: 81, column: 1, scope: !41)
