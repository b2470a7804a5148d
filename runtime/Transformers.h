// Transformers.h: finding and running the state transformer that
// mvedsua-xfgen generated into a new version (see mvedsua/xform.h).
#ifndef MVEDSUA_RUNTIME_TRANSFORMERS_H
#define MVEDSUA_RUNTIME_TRANSFORMERS_H

#include "Runtime.h"

#include <string>

struct mvedsua_xform;

namespace mvedsua {

// Rewrites a pointer whose target type did not change (functions and static
// data of the old version -> the new version's; anything else unchanged).
typedef void *(*RemapFn)(void *arg, void *old_ptr);

struct TransformStats {
  uint64_t objects = 0; // old objects given a new, transformed copy
  uint64_t freed = 0;   // old heap objects freed after success
};

// The transformer that lives in version `version`'s object, or nullptr.
const struct mvedsua_xform *FindTransformer(int version);

// True when the transformer writes entry (kind, key) itself.
bool TransformerWrites(const struct mvedsua_xform *xf, uint32_t kind,
                       const char *key);

// 0 when `xf` was generated for exactly this pair of versions; otherwise -1
// and a message naming both versions.
int CheckTransformer(const struct mvedsua_xform *xf, int from, int to,
                     const char *to_name, std::string *reason);

// Runs the transformer. On failure nothing it allocated survives and no old
// object is freed: -1 with the reason.
int RunTransformer(const struct mvedsua_xform *xf, int from, int to,
                   RemapFn remap, void *remap_arg, TransformStats *stats,
                   std::string *reason);

} // namespace mvedsua

#endif // MVEDSUA_RUNTIME_TRANSFORMERS_H
