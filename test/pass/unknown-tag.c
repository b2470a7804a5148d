// An unknown "mvedsua:" btf_decl_tag is an error, on a global and on a field
// (a typo must not silently lose an annotation); somebody else's tags are
// left alone.
// RUN: not %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags %s -o /dev/null 2>&1 | FileCheck %s
// RUN: %clang -g -c -fpass-plugin=%plugin %mvedsua_cflags -DOTHERS_ONLY %s -o /dev/null
#include <mvedsua.h>
#ifndef OTHERS_ONLY
int g __attribute__((btf_decl_tag("mvedsua:no_migrat")));
struct t { int f __attribute__((btf_decl_tag("mvedsua:opaqe"))); } t;
#endif
int h __attribute__((btf_decl_tag("other:thing")));

// CHECK: error: mvedsua: {{.*}}unknown-tag.c:8: unknown annotation 'mvedsua:no_migrat' on 'g' (known: MVEDSUA_NO_MIGRATE, MVEDSUA_OPAQUE, MVEDSUA_PTRARRAY(n), MVEDSUA_ARRAY(n))
// CHECK-NEXT: error: mvedsua: {{.*}}unknown-tag.c:9: unknown annotation 'mvedsua:opaqe' on field 'f' of struct t (known: MVEDSUA_NO_MIGRATE, MVEDSUA_OPAQUE, MVEDSUA_PTRARRAY(n), MVEDSUA_ARRAY(n))
// CHECK-NEXT: 2 errors generated.
// CHECK-NOT: other:thing
