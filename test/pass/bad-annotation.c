// MVEDSUA_PTRARRAY naming no sibling field, and on a field that is not a
// pointer: both are errors, reported together, and the compile fails.
// RUN: not %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null 2>&1 | FileCheck %s
// The same module with valid annotations compiles (see registry-types.c).
// RUN: %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags -DFIXED %s -o /dev/null
#include <mvedsua.h>
#ifdef FIXED
struct s { char **p MVEDSUA_PTRARRAY(n); int n; int *q MVEDSUA_PTRARRAY(4); };
#else
struct s { char **p MVEDSUA_PTRARRAY(nosuchfield); int n; int q MVEDSUA_PTRARRAY(n); };
#endif
struct s g;

// CHECK: error: mvedsua: {{.*}}bad-annotation.c: MVEDSUA_PTRARRAY(nosuchfield) on field 'p' of struct s: 'nosuchfield' is neither an integer constant nor an integer field of struct s
// CHECK-NEXT: error: mvedsua: {{.*}}bad-annotation.c: MVEDSUA_PTRARRAY(n) on field 'q' of struct s: the field is not a pointer
// CHECK-NEXT: 2 errors generated.
