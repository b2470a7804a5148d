/* What mvedsua-xfgen would generate for kvs v2-refused's int served -> long
 * served (FROM_ID, TO_ID from -include ids.h). With -DXF_CRASH the
 * transformer dereferences a null pointer: a crash inside the state
 * transformation, in the follower. */
#include <mvedsua/xform.h>

static const char *const __mvedsua_xf_keys[] = {"0:served"};

/* Exported, so the follower's backtrace can name it. */
__attribute__((noinline)) long xf_widen(const int *old) {
#ifdef XF_CRASH
  old = 0; /* hidden from the optimiser; no variable (it would be state) */
  __asm__ volatile("" : "+r"(old));
#endif
  return (long)*old;
}

static int __mvedsua_xf_transform(struct mvedsua_xf_ctx *ctx) {
  const int *old = __mvedsua_xf_old(ctx, 0, "served");
  long *now = __mvedsua_xf_new(ctx, 0, "served");
  if (!old || !now)
    return __mvedsua_xf_fail(ctx, "served not found");
  *now = xf_widen(old);
  return 0;
}

static const struct mvedsua_xform __mvedsua_xf_desc = {
    MVEDSUA_XFORM_MAGIC, MVEDSUA_XFORM_ABI, FROM_ID, TO_ID, "v1.bc",
    "v2.bc", 1, __mvedsua_xf_keys, __mvedsua_xf_transform};

__attribute__((constructor)) static void __mvedsua_xf_register(void) {
  __mvedsua_rt_register_transformer(&__mvedsua_xf_desc);
}
