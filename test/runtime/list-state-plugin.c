// --list-state of a real program built with MvedsuaPass.so: globals, statics,
// local statics, a migrated local and functions, with struct, union, 2-D
// array, bit-field, self-referential and function-pointer types and every
// annotation, in (kind, key) order.
// RUN: cd %S && %clang_version list-state-plugin.c -o %t.so
// RUN: %mvedsua-run --list-state %t.so | FileCheck %s -DSO=%t.so
// RUN: %mvedsua-run --list-state --json %t.so | %python %S/Inputs/version-id.py | FileCheck %s --check-prefix=ID
#include <mvedsua.h>
#include <stdio.h>

struct node {
  int value;
  struct node *next;
  unsigned flags : 3;
};
typedef struct node node_t;
union slot {
  int i;
  int (*fn)(int, char *);
};
node_t *head;
int counter MVEDSUA_NO_MIGRATE = 1;
static union slot slots[2][3];
static char *names[4];
void *handle MVEDSUA_OPAQUE;
struct buf {
  char *data MVEDSUA_ARRAY(len);
  unsigned len;
  char **lines MVEDSUA_PTRARRAY(4);
} buffer;

static int bump(void) {
  static int calls;
  return ++calls;
}

int main(int argc, char **argv) {
  int n = argc;
  MVEDSUA_MIGRATE_LOCAL(n);
  mvedsua_update_point("main");
  slots[0][0].i = bump();
  names[0] = argv[0];
  printf("%d %s %p\n", n, names[0], (void *)head);
  return 0;
}

// CHECK-LABEL: version
// CHECK-SAME: {{^ [0-9a-f]{16} }}[[SO]]{{$}}
// CHECK-NEXT: module list-state-plugin.c
// CHECK-NEXT:   global buffer: struct buf  size 24  line 30
// CHECK-NEXT:     struct buf {  # 24 bytes
// CHECK-NEXT:       @0 data: char * array(len)
// CHECK-NEXT:       @8 len: unsigned int
// CHECK-NEXT:       @16 lines: char ** ptrarray(4)
// CHECK-NEXT:     }
// CHECK-NEXT:   global counter: int  size 4  line 22 no_migrate
// CHECK-NEXT:   global handle: void *  size 8  line 25 opaque
// CHECK-NEXT:   global head: {{(node_t|struct node) \*}}  size 8  line 21
// CHECK-NEXT:     struct node {  # 24 bytes
// CHECK-NEXT:       @0 value: int
// CHECK-NEXT:       @8 next: struct node *
// CHECK-NEXT:       @bit 128 flags: unsigned int : 3
// CHECK-NEXT:     }
// CHECK-NEXT:   static list-state-plugin.c/names: char *[4]  size 32  line 24
// CHECK-NEXT:   static list-state-plugin.c/slots: union slot[2][3]  size 48  line 23
// CHECK-NEXT:     union slot {  # 8 bytes
// CHECK-NEXT:       @0 i: int
// A function type is spelled as the plugin names it: a signature when the
// name is one ("int (*)(int, char *)"), else "function *".
// CHECK-NEXT:       @0 fn: {{function \*|.*\(\*\)\(.*}}
// CHECK-NEXT:     }
// CHECK-NEXT:   local_static list-state-plugin.c/bump#calls: int  size 4  line 33
// CHECK-NEXT:   local list-state-plugin.c/main#n: int  size 4  line 38
// CHECK:        function main
// CHECK-NOT:    {{(global|static|local)}}

// ID: ok {{[0-9a-f]{16}$}}
