// Kitsune.h: the parts of Kitsune's program API (include/kitsune.h) that the
// update itself runs: hand-written transformers and the thread check.
#ifndef MVEDSUA_RUNTIME_KITSUNE_H
#define MVEDSUA_RUNTIME_KITSUNE_H

#include "Runtime.h"

#include <string>
#include <vector>

namespace mvedsua {

// A hand-written transformer (GLOBAL_XFORM and friends) of `version` for the
// data entry or migrated local `e`, or nullptr.
typedef int (*HandXformFn)(void *);
HandXformFn HandXformFor(int version, const struct mvedsua_entry &e);

// The spelling of the macro that named it, for messages: "GLOBAL_XFORM(x)".
std::string HandXformName(const struct mvedsua_entry &e);

// Marks the transformers' run: old and new lookups (GET_OLD_*, GET_NEW_*)
// answer from `from` and `to`; `local_index` is the saved frame a
// LOCAL_XFORM is transforming.
void BeginHandXforms(int from, int to);
void SetHandLocalIndex(uint64_t index);
void EndHandXforms();

// Kitsune's hooks, looked up in the loaded object's handle while the update
// runs (a lookup, no system call): _kitsune_prestart_xform, if the new
// version defines it, runs once the state moved and before its main starts
// (after control migrated); _kitsune_mainupdate_xform when its main reached
// the update point it came from, before the other threads are relaunched.
// Either may edit the threads the update relaunches (kitsune_threads_*).
void PrepareKitsuneHooks(void *handle);
void RunPrestartHook();
void RunMainUpdateHook();


} // namespace mvedsua

#endif // MVEDSUA_RUNTIME_KITSUNE_H
