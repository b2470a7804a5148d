// Kitsune annotations mvedsua has no counterpart for stop the build, each
// saying what to write instead.
// RUN: not %clang -g -c %mvedsua_cflags -DUSE_IGNORE %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=IGNORE
// RUN: not %clang -g -c %mvedsua_cflags -DUSE_SZ %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=SZ
// RUN: not %clang -g -c %mvedsua_cflags -DUSE_CUSTOM %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=CUSTOM
// With E_NOANNOT every annotation vanishes, as in Kitsune.
// RUN: %clang -g -c %mvedsua_cflags -DE_NOANNOT -DUSE_IGNORE -DUSE_SZ -DUSE_CUSTOM %s -o /dev/null
#include <kitsune.h>
struct s {
  char *buf E_ARRAY(self.n);
  int n;
#ifdef USE_IGNORE
  // IGNORE: error: E_IGNORE is not supported by mvedsua: use E_OPAQUE (copied as bytes, never followed) or E_MANUAL_MIGRATE
  void *cache E_IGNORE;
#endif
#ifdef USE_SZ
  // SZ: error: E_SZ is not supported by mvedsua: use E_ARRAY(n)
  char *p E_SZ;
#endif
#ifdef USE_CUSTOM
  // CUSTOM: error: E_CUSTOM is not supported by mvedsua: name the allocator in the .xf spec with ALLOCATOR alloc_fn free_fn
  void *q E_CUSTOM(my_malloc, my_free);
#endif
};
struct s g;
