// Kitsune's generic annotations (kitsune.h): a self-referential generic list
// with two typed payloads and an opaque one, instantiated by variables with
// E_G(...) (including instances as arguments, list<int,int,int> and
// rlist<redisClient*>*, and [opaque]) and declared through a typedef, compiles; E_ARRAY(self.n) is
// Kitsune's spelling of a sibling field. Each misuse is an error naming the
// file and line.
// RUN: %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null
// RUN: %clang -g -O2 -fPIC -shared -fpass-plugin=%plugin %mvedsua_cflags %s -o %t.so -L%libdir -lmvedsua
// RUN: %mvedsua-run --list-state %t.so | FileCheck %s --check-prefix=STATE
// STATE-DAG: global l: struct list *
// STATE-DAG: @8 data0: void *
// STATE-DAG: global counts: struct counts
// STATE-DAG: @0 v: int * array(n)
// RUN: not %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags -DBAD %s -o /dev/null 2>&1 | FileCheck %s
#include <kitsune.h>
#include <stddef.h>

struct list {
  int dummy;
  void E_T(@t0) *data0;
  void E_T(@t1) *data1;
  void * E_T(@t2) data2;
  struct list E_G(@t0, @t1, @t2) *next;
} E_GENERIC(@t0, @t1, @t2);

struct list E_G(int, struct list<int,int,int>, [opaque]) *l;

typedef struct list E_G(@t0, @t1, @t2) list E_GENERIC(@t0, @t1, @t2);
list E_G(int, int, int) *l2 = NULL;

struct client { int fd; };
typedef struct client redisClient;
typedef struct rlist {
  void E_T(@v) *value;
  struct rlist E_G(@v) *next;
} rlist E_GENERIC(@v);
struct box { void E_T(@t) *payload; } E_GENERIC(@t);
struct box E_G(rlist<redisClient*>*) *clients_box;

struct counts { int *v E_ARRAY(self.n); int n; } counts;

int main(void) { return l == NULL; }

#ifdef BAD
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+2]]: E_T(@u) on field 'p' of struct bad1: struct bad1 declares no parameter @u
struct bad1 {
  void E_T(@u) *p;
} E_GENERIC(@t);
struct bad1 *b1;
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+1]]: E_G(int, int) on 'b2': struct list takes 3 argument(s), 2 given
struct list E_G(int, int) *b2;
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+1]]: E_G(int) on 'b3': its type struct client is not generic
struct client E_G(int) *b3;
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+1]]: E_G(@t0, int, int) on 'b4': '@t0' is not a parameter of the enclosing struct
struct list E_G(@t0, int, int) *b4;
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+1]]: E_G(list<int>, int, int) on 'b5': 'list' takes 3 argument(s), 'list<int>' gives 1
struct list E_G(list<int>, int, int) *b5;
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+1]]: E_G(int, int, int-) on 'b6': 'int-' is not a type, a parameter (@t) or [opaque]
struct list E_G(int, int, int-) *b6;
// CHECK-DAG: error: mvedsua: {{.*}}kitsune-generics.c:[[@LINE+1]]: E_T on 'b7': it belongs on a struct's field
int *b7 E_T(@t);
#endif
