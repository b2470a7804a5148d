// Built without the plugin and without libmvedsua, as a plain executable, a
// program using the whole header still compiles, links and runs: update points
// and migrated locals do nothing, nothing is updating, and a request for an
// update fails with ENOSYS.
// RUN: %clang %mvedsua_cflags %s -o %t
// RUN: %t | FileCheck %s
// RUN: %clang -O2 -Wall -Werror %mvedsua_cflags %s -o %t.O2
// RUN: %t.O2 | FileCheck %s
// RUN: llvm-nm %t | FileCheck %s --check-prefix=NM
#include <errno.h>
#include <mvedsua.h>
#include <stdio.h>

struct buf { char *data MVEDSUA_ARRAY(len); unsigned len; void *h MVEDSUA_OPAQUE; };
int counter MVEDSUA_NO_MIGRATE = 1;
struct buf buffer;
static void on_abort(void) {}
void helper(void) MVEDSUA_NO_INSTRUMENT;
void helper(void) { mvedsua_update_point("helper"); }

int main(void) {
  int n = 41;
  MVEDSUA_MIGRATE_LOCAL(n);
  mvedsua_on_abort(on_abort);
  mvedsua_update_point("main");
  helper();
  n += counter;
  int rc = mvedsua_request_update("/nonexistent.so");
  printf("n %d updating %d from %d request %d enosys %d\n", n,
         mvedsua_is_updating(), mvedsua_is_updating_from("main"), rc,
         errno == ENOSYS);
  return 0;
}
// CHECK: n 42 updating 0 from 0 request -1 enosys 1

// No registry and no runtime symbols are needed.
// NM-NOT: __mvedsua.module
// NM-NOT: {{ U __mvedsua}}
