// The registry's entries: one per global, file static (key file.c/name),
// function-local static (file.c/func#name), external function and static
// function whose address is taken, with kind, flags (CONST), annotations
// (NO_MIGRATE), size and declaration line; a static function that is only
// called is not registered. Then the module descriptor and its constructor.
// RUN: %clang -g -O0 -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o %t.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.ll \
// RUN:   | FileCheck %s --implicit-check-not='called_fn\00'
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.ll \
// RUN:   | grep '^@__mvedsua.entries' | FileCheck %s --check-prefix=NOFN
#include <mvedsua.h>

int counter = 1;
static int hidden = 2;
int fresh MVEDSUA_NO_MIGRATE = 7;
const int limit = 10;
static const char banner[] = "hi";
long big[5];

int ext_fn(int x) { return x + 1; }
static int taken_fn(int x) { return x * 2; }
static int called_fn(int x) { return x - 1; }
int (*handler)(int) = taken_fn;

int tick(void) {
  static int calls;
  return ++calls + called_fn(hidden) + banner[0];
}

// Key strings and type descriptors are all defined before the entries.
// CHECK-DAG: @[[K_COUNTER:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"counter\00", align 1
// CHECK-DAG: @[[K_HIDDEN:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"registry-entries.c/hidden\00"
// CHECK-DAG: @[[K_FRESH:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"fresh\00"
// CHECK-DAG: @[[K_LIMIT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"limit\00"
// CHECK-DAG: @[[K_BANNER:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"registry-entries.c/banner\00"
// CHECK-DAG: @[[K_BIG:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"big\00"
// CHECK-DAG: @[[K_HANDLER:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"handler\00"
// CHECK-DAG: @[[K_CALLS:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"registry-entries.c/tick#calls\00"
// CHECK-DAG: @[[K_EXT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"ext_fn\00"
// CHECK-DAG: @[[K_TAKEN:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"registry-entries.c/taken_fn\00"
// CHECK-DAG: @[[K_TICK:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"tick\00"
// CHECK-DAG: @[[N_INT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"int\00"
// CHECK-DAG: @[[T_INT:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 1, i32 0, i64 4, i64 0, i64 {{-?[0-9]+}}, ptr @[[N_INT]], ptr null, ptr null }
// CHECK-DAG: @[[N_CHAR3:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"char[3]\00"
// CHECK-DAG: @[[T_CHAR3:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 7, i32 0, i64 3, i64 3, i64 {{-?[0-9]+}}, ptr @[[N_CHAR3]], ptr @[[T_CHAR:__mvedsua\.type[.0-9]*]], ptr null }
// CHECK-DAG: @[[T_CHAR]] = private constant %struct.mvedsua_type { i32 1, i32 0, i64 1, i64 0,
// CHECK-DAG: @[[N_LONG5:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"long[5]\00"
// CHECK-DAG: @[[T_LONG5:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 7, i32 0, i64 40, i64 5, i64 {{-?[0-9]+}}, ptr @[[N_LONG5]], ptr @[[T_LONG:__mvedsua\.type[.0-9]*]], ptr null }
// CHECK-DAG: @[[T_LONG]] = private constant %struct.mvedsua_type { i32 1, i32 0, i64 8, i64 0,
// CHECK-DAG: @[[T_FNPTR:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 6, i32 0, i64 8, i64 0, i64 {{-?[0-9]+}}, ptr @{{.*}}, ptr @[[T_FN:__mvedsua\.type[.0-9]*]], ptr null }
// CHECK-DAG: @[[T_FN]] = private constant %struct.mvedsua_type { i32 10, i32 0, i64 0, i64 0,

// Entries in module order of the globals (clang emits the tentative
// definition of big last), then functions. Fields: key,
// address, size, type, kind (0 global, 1 static, 2 local static, 4 function),
// flags (1 const), annotations (1 no_migrate), line, annotation argument.
// CHECK-LABEL: @__mvedsua.entries = private constant [11 x %struct.mvedsua_entry] [
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_COUNTER]], ptr @counter, i64 4, ptr @[[T_INT]], i32 0, i32 0, i32 0, i32 13, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_FRESH]], ptr @fresh, i64 4, ptr @[[T_INT]], i32 0, i32 0, i32 1, i32 15, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_LIMIT]], ptr @limit, i64 4, ptr @[[T_INT]], i32 0, i32 1, i32 0, i32 16, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_HANDLER]], ptr @handler, i64 8, ptr @[[T_FNPTR]], i32 0, i32 0, i32 0, i32 23, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_CALLS]], ptr @tick.calls, i64 4, ptr @[[T_INT]], i32 2, i32 0, i32 0, i32 26, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_HIDDEN]], ptr @hidden, i64 4, ptr @[[T_INT]], i32 1, i32 0, i32 0, i32 14, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_BANNER]], ptr @banner, i64 3, ptr @[[T_CHAR3]], i32 1, i32 1, i32 0, i32 17, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_BIG]], ptr @big, i64 40, ptr @[[T_LONG5]], i32 0, i32 0, i32 0, i32 18, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_EXT]], ptr @ext_fn, i64 0, ptr null, i32 4, i32 0, i32 0, i32 20, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_TAKEN]], ptr @taken_fn, i64 0, ptr null, i32 4, i32 0, i32 0, i32 21, ptr null },
// CHECK-SAME: %struct.mvedsua_entry { ptr @[[K_TICK]], ptr @tick, i64 0, ptr null, i32 4, i32 0, i32 0, i32 25, ptr null }]
// CHECK-NEXT: @[[SRC:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [{{[0-9]+}} x i8] c"{{.*}}/registry-entries.c\00"
// The module: magic "MVDS", ABI 1, source, state hash, 11 entries.
// CHECK-NEXT: @__mvedsua.module = private constant %struct.mvedsua_module { i32 1297499219, i32 1, ptr @[[SRC]], i64 {{-?[0-9]+}}, i64 11, ptr @__mvedsua.entries }
// Registered first, at priority 0, before the program's own constructors.
// CHECK-NEXT: @llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 0, ptr @__mvedsua.register, ptr null }]

// CHECK:      declare void @__mvedsua_rt_register_module(ptr)
// CHECK:      define internal void @__mvedsua.register() {
// CHECK-NEXT: entry:
// CHECK-NEXT:   call void @__mvedsua_rt_register_module(ptr @__mvedsua.module)
// CHECK-NEXT:   ret void
// CHECK-NEXT: }

// The called-only static is left to the optimiser: not in the registry.
// NOFN: @__mvedsua.entries
// NOFN-SAME: @taken_fn
// NOFN-NOT: @called_fn
