// UpdatePoint.cpp: the update flag, the slow path of an update point, and the
// program-facing queries about updates.
//
// A lowered update point is `if (__mvedsua_update_pending) slow_path(name)`:
// the flag is the only thing the program touches in the common case, so it is
// a plain int that a signal handler may set.
#include "Runtime.h"

#include <errno.h>
#include <string.h>

// Declared extern "C" by registry.h; exported for every version's update points.
__attribute__((visibility("default"))) volatile int __mvedsua_update_pending = 0;

namespace mvedsua {
namespace {

constexpr int kMaxAbortCallbacks = 16;
void (*g_abort_callbacks[kMaxAbortCallbacks])(void);
int g_n_abort_callbacks;

// The update point the program last stopped at, for messages and for
// is_updating_from once updates resume there.
const char *volatile g_last_point;

// True while a new version runs towards the update point it came from. No
// update has run in this process yet, so it is never set before updates do.
int g_updating;
const char *g_updating_from;

} // namespace
} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT void __mvedsua_rt_update_point_slow(const char *name) {
  g_last_point = name;
  // No update request can be pending yet (the supervisor does not send any):
  // drop the flag so the point is a plain load again.
  __atomic_store_n(&__mvedsua_update_pending, 0, __ATOMIC_RELAXED);
}

MVEDSUA_EXPORT void __mvedsua_rt_update_point(const char *name) {
  if (__builtin_expect(__mvedsua_update_pending, 0))
    __mvedsua_rt_update_point_slow(name);
}

MVEDSUA_EXPORT int __mvedsua_rt_is_updating(void) { return g_updating; }

MVEDSUA_EXPORT int __mvedsua_rt_is_updating_from(const char *name) {
  return g_updating && name && g_updating_from &&
         strcmp(name, g_updating_from) == 0;
}

MVEDSUA_EXPORT int __mvedsua_rt_request_update(const char *path) {
  if (!path || !*path) {
    errno = EINVAL;
    return -1;
  }
  if (SupervisorFd() < 0) {
    errno = ENOTCONN; // run under mvedsua-run to be updatable
    return -1;
  }
  errno = ENOTSUP; // the supervisor cannot perform updates yet
  return -1;
}

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
