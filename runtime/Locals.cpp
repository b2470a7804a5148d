// Locals.cpp: which migrated locals are live, per thread.
//
// A plugin-lowered MVEDSUA_MIGRATE_LOCAL pushes (entry, address) when the
// local's function reaches it and pops it before every return, so at an
// update point the stack holds exactly the locals of the active frames. It is
// a fixed array in initial-exec TLS: entering a function must not allocate.
//
// Without the plugin, MVEDSUA_MIGRATE_LOCAL calls __mvedsua_rt_migrate_local,
// which has no matching "leave": those locals are noted by name, latest address
// wins, like Kitsune's NOTE_LOCAL.
#include "Runtime.h"
#include "StateTransfer.h"

#include <string.h>

namespace mvedsua {
namespace {

constexpr int kMaxLiveLocals = 256;
constexpr int kMaxNotedLocals = 64;

struct LiveLocal {
  const struct mvedsua_entry *entry;
  void *addr;
};

struct NotedLocal {
  const char *name;
  void *addr;
  unsigned long size;
};

#define MVEDSUA_TLS __thread __attribute__((tls_model("initial-exec")))
MVEDSUA_TLS LiveLocal t_live[kMaxLiveLocals];
MVEDSUA_TLS int t_n_live;     // may exceed kMaxLiveLocals: depth, not slots
MVEDSUA_TLS NotedLocal t_noted[kMaxNotedLocals];
MVEDSUA_TLS int t_n_noted;

void ReportOverflow(const struct mvedsua_entry *e) {
  static int reported;
  if (__atomic_exchange_n(&reported, 1, __ATOMIC_RELAXED) == 0)
    Report("error: more than %d live migrated locals in one thread; %s and "
           "deeper ones will not be migrated",
           kMaxLiveLocals, e && e->key ? e->key : "?");
}

} // namespace

int LiveLocalCount() { return t_n_live < kMaxLiveLocals ? t_n_live : kMaxLiveLocals; }

LocalView LiveLocalAt(int i) {
  const struct mvedsua_entry *e = t_live[i].entry;
  return {e, e->key, t_live[i].addr, (unsigned long)e->size};
}

int NotedLocalCount() { return t_n_noted; }

LocalView NotedLocalAt(int i) {
  return {nullptr, t_noted[i].name, t_noted[i].addr, t_noted[i].size};
}

void ForgetLocals() {
  t_n_live = 0;
  t_n_noted = 0;
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT void __mvedsua_rt_local_enter(const struct mvedsua_entry *e,
                                             void *addr) {
  // During an update the new version's frames receive the old values.
  if (__builtin_expect(__atomic_load_n(&g_restoring_locals, __ATOMIC_ACQUIRE), 0))
    RestoreLocal(e, addr);
  int depth = t_n_live++;
  if (depth < kMaxLiveLocals)
    t_live[depth] = {e, addr};
  else
    ReportOverflow(e);
}

// Pops down to the innermost frame of e: frames above it were left without a
// leave (longjmp out of their function).
MVEDSUA_EXPORT void __mvedsua_rt_local_leave(const struct mvedsua_entry *e) {
  int top = t_n_live < kMaxLiveLocals ? t_n_live : kMaxLiveLocals;
  if (t_n_live > kMaxLiveLocals) { // overflowed frames kept no slot
    t_n_live--;
    return;
  }
  for (int i = top - 1; i >= 0; --i)
    if (t_live[i].entry == e) {
      t_n_live = i;
      return;
    }
}

MVEDSUA_EXPORT void __mvedsua_rt_migrate_local(const char *name, void *addr,
                                               unsigned long size) {
  if (__builtin_expect(__atomic_load_n(&g_restoring_locals, __ATOMIC_ACQUIRE), 0))
    RestoreNotedLocal(name, addr, size);
  for (int i = 0; i < t_n_noted; ++i)
    if (strcmp(t_noted[i].name, name) == 0) {
      t_noted[i] = {name, addr, size};
      return;
    }
  if (t_n_noted < kMaxNotedLocals)
    t_noted[t_n_noted++] = {name, addr, size};
  else
    ReportOverflow(nullptr);
}
