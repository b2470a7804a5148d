// Type descriptors built from debug info: a 2-D array, nested structs, a
// union, an anonymous struct, a function pointer, bit-fields, an enum, a
// self-referential list and annotated fields (MVEDSUA_PTRARRAY(sibling),
// MVEDSUA_ARRAY(16), MVEDSUA_OPAQUE), in the IR the plugin emits and as the
// runtime lists them from a built version.
// RUN: %clang -g -O0 -S -emit-llvm -Xclang -disable-llvm-passes %mvedsua_cflags %s -o %t.ll
// RUN: %opt -load-pass-plugin=%plugin -passes=mvedsua -S %t.ll | FileCheck %s
// RUN: %clang_version %s -o %t.so
// RUN: %mvedsua-run --list-state %t.so | FileCheck %s --check-prefix=LIST
#include <mvedsua.h>

struct point { int x, y; };
struct rect { struct point min, max; };
union value { long i; double d; char *s; };
struct list { int v; struct list *next; };
enum color { RED, GREEN = 5, BLUE };
struct flags { unsigned a : 3; unsigned b : 5; int c; };
struct anon { int tag; struct { short lo, hi; } range; };
struct vec {
  char **items MVEDSUA_PTRARRAY(count);
  unsigned count;
  int *slots MVEDSUA_ARRAY(16);
  void *cookie MVEDSUA_OPAQUE;
};

int grid[3][4];
struct rect box;
union value val;
struct list *head;
enum color paint = GREEN;
struct flags bits;
struct anon an;
struct vec vec;
int (*handler)(int, char *);

int main(void) { return 0; }

// Type kinds: 1 int, 2 uint, 5 enum, 6 pointer, 7 array, 8 struct, 9 union,
// 10 function. Fields: name, offset and size in bits, type, annotations
// (2 opaque, 4 ptrarray, 8 array), reserved, annotation argument.

// CHECK-DAG: @[[N_INT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [4 x i8] c"int\00"
// CHECK-DAG: @[[T_INT:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 1, i32 0, i64 4, i64 0, i64 {{-?[0-9]+}}, ptr @[[N_INT]], ptr null, ptr null }
// CHECK-DAG: @[[N_UINT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [13 x i8] c"unsigned int\00"
// CHECK-DAG: @[[T_UINT:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 2, i32 0, i64 4, i64 0, i64 {{-?[0-9]+}}, ptr @[[N_UINT]], ptr null, ptr null }

// int grid[3][4]: an array of 3 int[4], spelled as in C.
// CHECK-DAG: @[[N_GRID:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [10 x i8] c"int[3][4]\00"
// CHECK-DAG: @[[N_ROW:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [7 x i8] c"int[4]\00"
// CHECK-DAG: @[[T_ROW:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 7, i32 0, i64 16, i64 4, i64 {{-?[0-9]+}}, ptr @[[N_ROW]], ptr @[[T_INT]], ptr null }
// CHECK-DAG: @[[T_GRID:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 7, i32 0, i64 48, i64 3, i64 {{-?[0-9]+}}, ptr @[[N_GRID]], ptr @[[T_ROW]], ptr null }

// Nested structs: rect holds two points.
// CHECK-DAG: @[[N_POINT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [13 x i8] c"struct point\00"
// CHECK-DAG: @[[N_RECT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [12 x i8] c"struct rect\00"
// CHECK-DAG: @[[T_POINT:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 0, i64 8, i64 2, i64 {{-?[0-9]+}}, ptr @[[N_POINT]], ptr null, ptr @[[F_POINT:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[F_POINT]] = private constant [2 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 32, ptr @[[T_INT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 32, i64 32, ptr @[[T_INT]], i32 0, i32 0, ptr null }]
// CHECK-DAG: @[[T_RECT:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 0, i64 16, i64 2, i64 {{-?[0-9]+}}, ptr @[[N_RECT]], ptr null, ptr @[[F_RECT:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[F_RECT]] = private constant [2 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 64, ptr @[[T_POINT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 64, i64 64, ptr @[[T_POINT]], i32 0, i32 0, ptr null }]

// The union: three members at offset 0.
// CHECK-DAG: @[[N_VALUE:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [12 x i8] c"union value\00"
// CHECK-DAG: @[[T_VALUE:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 9, i32 0, i64 8, i64 3, i64 {{-?[0-9]+}}, ptr @[[N_VALUE]], ptr null, ptr @[[F_VALUE:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[F_VALUE]] = private constant [3 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 64, {{.*}} }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 64, {{.*}} }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 64, {{.*}} }]

// The list: struct list * -> struct list, whose 'next' is that same pointer.
// CHECK-DAG: @[[N_LIST:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [12 x i8] c"struct list\00"
// CHECK-DAG: @[[T_LIST:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 0, i64 16, i64 2, i64 {{-?[0-9]+}}, ptr @[[N_LIST]], ptr null, ptr @[[F_LIST:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[T_LISTP:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 6, i32 0, i64 8, i64 0, i64 {{-?[0-9]+}}, ptr @__mvedsua.str{{[.0-9]*}}, ptr @[[T_LIST]], ptr null }
// CHECK-DAG: @[[F_LIST]] = private constant [2 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 32, ptr @[[T_INT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 64, i64 64, ptr @[[T_LISTP]], i32 0, i32 0, ptr null }]

// The enum, over unsigned int.
// CHECK-DAG: @[[N_COLOR:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [11 x i8] c"enum color\00"
// CHECK-DAG: @[[T_COLOR:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 5, i32 0, i64 4, i64 0, i64 {{-?[0-9]+}}, ptr @[[N_COLOR]], ptr @[[T_UINT]], ptr null }

// Bit-fields keep their bit offsets and widths.
// CHECK-DAG: @[[N_FLAGS:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [13 x i8] c"struct flags\00"
// CHECK-DAG: @[[T_FLAGS:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 0, i64 8, i64 3, i64 {{-?[0-9]+}}, ptr @[[N_FLAGS]], ptr null, ptr @[[F_FLAGS:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[F_FLAGS]] = private constant [3 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 3, ptr @[[T_UINT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 3, i64 5, ptr @[[T_UINT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 32, i64 32, ptr @[[T_INT]], i32 0, i32 0, ptr null }]

// The anonymous struct member is flagged ANONYMOUS (1).
// CHECK-DAG: @[[N_ANON:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [12 x i8] c"struct anon\00"
// CHECK-DAG: @[[N_ANONS:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [19 x i8] c"struct <anonymous>\00"
// CHECK-DAG: @[[T_INNER:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 1, i64 4, i64 2, i64 {{-?[0-9]+}}, ptr @[[N_ANONS]], ptr null, ptr @__mvedsua.fields{{[.0-9]*}} }
// CHECK-DAG: @[[T_ANON:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 0, i64 8, i64 2, i64 {{-?[0-9]+}}, ptr @[[N_ANON]], ptr null, ptr @[[F_ANON:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[F_ANON]] = private constant [2 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 32, ptr @[[T_INT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 32, i64 32, ptr @[[T_INNER]], i32 0, i32 0, ptr null }]

// Annotated fields: PTRARRAY(count) names its sibling, ARRAY(16) a constant.
// CHECK-DAG: @[[N_VEC:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [11 x i8] c"struct vec\00"
// CHECK-DAG: @[[S_COUNT:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [6 x i8] c"count\00"
// CHECK-DAG: @[[S_16:__mvedsua\.str[.0-9]*]] = private unnamed_addr constant [3 x i8] c"16\00"
// CHECK-DAG: @[[T_VEC:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 8, i32 0, i64 32, i64 4, i64 {{-?[0-9]+}}, ptr @[[N_VEC]], ptr null, ptr @[[F_VEC:__mvedsua\.fields[.0-9]*]] }
// CHECK-DAG: @[[F_VEC]] = private constant [4 x %struct.mvedsua_field] [%struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 0, i64 64, ptr @__mvedsua.type{{[.0-9]*}}, i32 4, i32 0, ptr @[[S_COUNT]] }, %struct.mvedsua_field { ptr @[[S_COUNT]], i64 64, i64 32, ptr @[[T_UINT]], i32 0, i32 0, ptr null }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 128, i64 64, ptr @__mvedsua.type{{[.0-9]*}}, i32 8, i32 0, ptr @[[S_16]] }, %struct.mvedsua_field { ptr @__mvedsua.str{{[.0-9]*}}, i64 192, i64 64, ptr @__mvedsua.type{{[.0-9]*}}, i32 2, i32 0, ptr null }]

// The function pointer points to a FUNCTION descriptor.
// CHECK-DAG: @[[T_FN:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 10, i32 0, i64 0, i64 0,
// CHECK-DAG: @[[T_FNP:__mvedsua\.type[.0-9]*]] = private constant %struct.mvedsua_type { i32 6, i32 0, i64 8, i64 0, i64 {{-?[0-9]+}}, ptr @__mvedsua.str{{[.0-9]*}}, ptr @[[T_FN]], ptr null }

// CHECK-LABEL: @__mvedsua.entries = private constant [10 x %struct.mvedsua_entry]
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @paint, i64 4, ptr @[[T_COLOR]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @grid, i64 48, ptr @[[T_GRID]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @box, i64 16, ptr @[[T_RECT]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @val, i64 8, ptr @[[T_VALUE]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @head, i64 8, ptr @[[T_LISTP]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @bits, i64 8, ptr @[[T_FLAGS]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @an, i64 8, ptr @[[T_ANON]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @vec, i64 32, ptr @[[T_VEC]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @handler, i64 8, ptr @[[T_FNP]], i32 0,
// CHECK-SAME: { ptr @__mvedsua.str{{[.0-9]*}}, ptr @main, i64 0, ptr null, i32 4,

// LIST:      module {{.*}}registry-types.c  10 entries
// LIST-NEXT:   global an: struct anon  size 8  line 32
// LIST-NEXT:     struct anon {  # 8 bytes
// LIST-NEXT:       @0 tag: int
// LIST-NEXT:       @4 range: struct <anonymous>
// LIST-NEXT:         struct <anonymous> {  # 4 bytes
// LIST-NEXT:           @0 lo: short
// LIST-NEXT:           @2 hi: short
// LIST-NEXT:         }
// LIST-NEXT:     }
// LIST-NEXT:   global bits: struct flags  size 8  line 31
// LIST-NEXT:     struct flags {  # 8 bytes
// LIST-NEXT:       @bit 0 a: unsigned int : 3
// LIST-NEXT:       @bit 3 b: unsigned int : 5
// LIST-NEXT:       @4 c: int
// LIST-NEXT:     }
// LIST-NEXT:   global box: struct rect  size 16  line 27
// LIST-NEXT:     struct rect {  # 16 bytes
// LIST-NEXT:       @0 min: struct point
// LIST-NEXT:         struct point {  # 8 bytes
// LIST-NEXT:           @0 x: int
// LIST-NEXT:           @4 y: int
// LIST-NEXT:         }
// LIST-NEXT:       @8 max: struct point
// LIST:        global grid: int[3][4]  size 48  line 26
// LIST-NEXT:   global handler: {{.*}}*  size 8  line 34
// LIST-NEXT:   global head: struct list *  size 8  line 29
// LIST-NEXT:     struct list {  # 16 bytes
// LIST-NEXT:       @0 v: int
// LIST-NEXT:       @8 next: struct list *
// LIST-NEXT:     }
// LIST-NEXT:   global paint: enum color  size 4  line 30
// LIST-NEXT:   global val: union value  size 8  line 28
// LIST-NEXT:     union value {  # 8 bytes
// LIST-NEXT:       @0 i: long
// LIST-NEXT:       @0 d: double
// LIST-NEXT:       @0 s: char *
// LIST-NEXT:     }
// LIST-NEXT:   global vec: struct vec  size 32  line 33
// LIST-NEXT:     struct vec {  # 32 bytes
// LIST-NEXT:       @0 items: char ** ptrarray(count)
// LIST-NEXT:       @8 count: unsigned int
// LIST-NEXT:       @16 slots: int * array(16)
// LIST-NEXT:       @24 cookie: void * opaque
// LIST-NEXT:     }
// LIST-NEXT:   function main  line 36
