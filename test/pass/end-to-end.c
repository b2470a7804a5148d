// A version built with the plugin by clang at -O0, -O2 and with ThinLTO
// (-flto=thin, linked by lld) runs under mvedsua-run, which dlopens it and
// calls its main with argv[0] = the .so. All three register the same state,
// so they have the same version id; at -O2 the static that is only read
// (which the optimiser would otherwise fold into its uses) is still listed and
// still a symbol of its own.
// RUN: %clang -g -O0 -fPIC -shared -fpass-plugin=%plugin %mvedsua_cflags %s -o %t.O0.so -L%libdir -lmvedsua
// RUN: %clang -g -O2 -fPIC -shared -fpass-plugin=%plugin %mvedsua_cflags %s -o %t.O2.so -L%libdir -lmvedsua
// RUN: %clang -g -O2 -flto=thin -fuse-ld=lld -fPIC -shared -fpass-plugin=%plugin %mvedsua_cflags %s -o %t.thin.so -L%libdir -lmvedsua
// RUN: %mvedsua-run %t.O0.so a b | FileCheck %s -DSO=%t.O0.so
// RUN: %mvedsua-run %t.O2.so a b | FileCheck %s -DSO=%t.O2.so
// RUN: %mvedsua-run %t.thin.so a b | FileCheck %s -DSO=%t.thin.so
// RUN: %mvedsua-run --list-state %t.O0.so > %t.O0.list
// RUN: %mvedsua-run --list-state %t.O2.so > %t.O2.list
// RUN: %mvedsua-run --list-state %t.thin.so > %t.thin.list
// RUN: FileCheck %s --check-prefix=LIST < %t.O2.list
// RUN: FileCheck %s --check-prefix=LIST < %t.thin.list
// RUN: cat %t.O0.list %t.O2.list %t.thin.list | FileCheck %s --check-prefix=SAMEID
// RUN: llvm-nm %t.O2.so | FileCheck %s --check-prefix=NM
#include <mvedsua.h>
#include <stdio.h>

static int limit = 3; /* only read */
static int served;
int total;

static int step(int i) { return i * 2; }

int main(int argc, char **argv) {
  int n = 0;
  MVEDSUA_MIGRATE_LOCAL(n);
  for (int i = 0; i < limit; i++) {
    mvedsua_update_point("loop");
    served += step(i);
    n++;
  }
  total = served + n;
  printf("argv0 %s argc %d\n", argv[0], argc);
  printf("served %d n %d total %d updating %d\n", served, n, total,
         mvedsua_is_updating());
  return 0;
}

// CHECK:      argv0 [[SO]] argc 3
// CHECK-NEXT: served 6 n 3 total 9 updating 0

// LIST:      module {{.*}}end-to-end.c  5 entries
// LIST-NEXT:   global total: int  size 4  line 25
// LIST-NEXT:   static end-to-end.c/limit: int  size 4  line 23
// LIST-NEXT:   static end-to-end.c/served: int  size 4  line 24
// LIST-NEXT:   local end-to-end.c/main#n: int  size 4  line 30
// LIST-NEXT:   function main  line 29
// LIST-NOT:    step

// SAMEID: version [[ID:[0-9a-f]{16}]] {{.*}}.O0.so
// SAMEID: version [[ID]] {{.*}}.O2.so
// SAMEID: version [[ID]] {{.*}}.thin.so

// NM: {{[dD]}} limit
