// UpdatePoint.cpp: the update flag, the slow path of an update point, and the
// program-facing queries about updates.
//
// A lowered update point is `if (__mvedsua_update_pending) slow_path(name)`:
// the flag is the only thing the program touches in the common case, so it is
// a plain int that a signal handler may set.
#include "Runtime.h"
#include "mve/Follower.h"

#include <errno.h>
#include <string.h>

// Declared extern "C" by registry.h; exported for every version's update points.
__attribute__((visibility("default"))) volatile int __mvedsua_update_pending = 0;

namespace mvedsua {
namespace {

constexpr int kMaxAbortCallbacks = 16;
void (*g_abort_callbacks[kMaxAbortCallbacks])(void);
int g_n_abort_callbacks;

// The update point the program last stopped at, for messages.
const char *volatile g_last_point;

} // namespace
} // namespace mvedsua

using namespace mvedsua;

// The runtime's own calls here (the supervisor channel, reports) are
// neither recorded nor replayed; the multi-version stages advance after.
MVEDSUA_EXPORT void __mvedsua_rt_update_point_slow(const char *name) {
  g_last_point = name;
  int mode = mve::PauseShim();
  HandleUpdatePoint(name); // InPlaceUpdate.cpp
  mve::ResumeShim(mode);
}

MVEDSUA_EXPORT void __mvedsua_rt_update_point(const char *name) {
  if (__builtin_expect(__mvedsua_update_pending, 0))
    __mvedsua_rt_update_point_slow(name);
}

MVEDSUA_EXPORT int __mvedsua_rt_is_updating(void) { return IsUpdating(); }

MVEDSUA_EXPORT int __mvedsua_rt_is_updating_from(const char *name) {
  const char *from = UpdatingFrom();
  return from && name && strcmp(name, from) == 0;
}

MVEDSUA_EXPORT int __mvedsua_rt_request_update(const char *path) {
  return RequestUpdate(path, kUpdateFromProgram);
}

namespace mvedsua {
void RunAbortCallbacks() {
  int n = __atomic_load_n(&g_n_abort_callbacks, __ATOMIC_RELAXED);
  for (int i = 0; i < n && i < kMaxAbortCallbacks; ++i)
    if (g_abort_callbacks[i])
      g_abort_callbacks[i]();
}
} // namespace mvedsua

MVEDSUA_EXPORT void __mvedsua_rt_on_abort(void (*callback)(void)) {
  if (!callback)
    return;
  int slot = __atomic_fetch_add(&g_n_abort_callbacks, 1, __ATOMIC_RELAXED);
  if (slot >= kMaxAbortCallbacks) {
    Report("error: mvedsua_on_abort: more than %d callbacks, %p ignored",
           kMaxAbortCallbacks, (void *)callback);
    return;
  }
  g_abort_callbacks[slot] = callback;
}
