// Kitsune.cpp: Kitsune's program API (include/kitsune.h) on the runtime.
//
// Kitsune's own runtime migrated state from inside the new version's main
// (kitsune_do_automigrate, MIGRATE_*); mvedsua moves it before main starts.
// What is left here: requesting an update the way Kitsune programs do
// (kitsune_signal_update + kitsune_set_next_version), the hand-written
// transformers the *_XFORM macros register (run by the state transfer like an
// xfgen transformer's entries), lookups of the old and new version's state by
// Kitsune's key parts, E_MANUAL_MIGRATE variables migrated at their MIGRATE_*
// call, the pre-start hook, and threads started with kitsune_pthread_create,
// which an update refuses while they run (they would go on in old code).
#include "Kitsune.h"

#include "StateTransfer.h"
#include "Threads.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

namespace mvedsua {
namespace {

constexpr int kMaxHandXforms = 1024;

struct HandXform {
  const char *file; // Kitsune's mangled file name ("main_c"), or null
  const char *func; // or null
  const char *name;
  HandXformFn fn;
  const void *base; // the object it lives in
};
HandXform g_xforms[kMaxHandXforms];
int g_n_xforms;

// During a run of the hand-written transformers: the versions they see.
int g_run_from = -1, g_run_to = -1;
uint64_t g_local_index;

pthread_mutex_t g_request_lock = PTHREAD_MUTEX_INITIALIZER;
bool g_signalled;
char *g_next_version;


void (*g_prestart)(void);   // the next version's pre-start hook, if any
void (*g_mainupdate)(void); // ... and its main-update hook

// Kitsune's ktthread_info (include/ktthreads.h).
struct ThreadInfo {
  void *arg;
  void *(*start_fun)(void *);
  const char *update_pt;
  pthread_attr_t attr;
};
// kitsune_threads_*, allowed while a hook runs: the threads the update
// relaunches (by slot), as the program sees and edits them.
struct ThreadEdit {
  int slot;
  bool removed;
  ThreadInfo info;
};
bool g_in_thread_hook;
std::vector<ThreadEdit> g_thread_edits;
size_t g_thread_cursor; // 1 + the one kitsune_threads_next returned last

// The parts of a registry key: "name", "file.c/name", "file.c/func#name".
struct KeyParts {
  std::string file, func, name;
};

KeyParts SplitKey(const char *key) {
  KeyParts k;
  std::string s = key ? key : "";
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    k.file = s.substr(0, slash);
    s = s.substr(slash + 1);
  }
  size_t hash = s.find('#');
  if (hash != std::string::npos) {
    k.func = s.substr(0, hash);
    s = s.substr(hash + 1);
  }
  k.name = s;
  return k;
}

// Kitsune names a file by __FILE__ with every character that is not a letter
// or a digit made '_' ("main.c" -> "main_c"); registry keys use the base
// name. Both spellings compare equal after this.
std::string MangleFile(const char *file) {
  const char *base = strrchr(file, '/');
  std::string out = base ? base + 1 : file;
  for (char &c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      c = '_';
  return out;
}

uint32_t KindOf(const char *func, const char *file) {
  if (func && !file)
    return MVEDSUA_ENTRY_LOCAL;
  if (func)
    return MVEDSUA_ENTRY_LOCAL_STATIC;
  return file ? MVEDSUA_ENTRY_STATIC : MVEDSUA_ENTRY_GLOBAL;
}

bool Matches(const struct mvedsua_entry &e, const char *name, const char *func,
             const char *file) {
  if (e.kind != KindOf(func, file) || !name)
    return false;
  KeyParts k = SplitKey(e.key);
  if (k.name != name || (func && k.func != func))
    return false;
  return !file || MangleFile(k.file.c_str()) == MangleFile(file);
}

template <typename Fn> const struct mvedsua_entry *FindIn(int version, Fn pred) {
  if (version < 0)
    return nullptr;
  for (int m = 0; m < ModuleCount(); ++m) {
    if (ModuleVersion(m) != version)
      continue;
    const struct mvedsua_module *mod = GetModule(m);
    for (uint64_t i = 0; i < mod->n_entries; ++i)
      if (pred(mod->entries[i]))
        return &mod->entries[i];
  }
  return nullptr;
}

const struct mvedsua_entry *FindByParts(int version, const char *name,
                                        const char *func, const char *file) {
  return FindIn(version, [&](const struct mvedsua_entry &e) {
    return Matches(e, name, func, file);
  });
}

const struct mvedsua_entry *FindByKey(int version, const char *key) {
  return FindIn(version, [&](const struct mvedsua_entry &e) {
    return e.kind != MVEDSUA_ENTRY_FUNCTION && e.key && key &&
           strcmp(e.key, key) == 0;
  });
}

bool Running() { return g_run_from >= 0; }
int OldVersion() { return Running() ? g_run_from : PreviousVersion(); }
int NewVersion() { return Running() ? g_run_to : CurrentVersion(); }

// dlsym in a loaded version (they are loaded RTLD_LOCAL: no global lookup).
void *VersionSymbol(int version, const char *symbol) {
  if (version < 0 || !symbol)
    return nullptr;
  void *h = dlopen(GetVersion(version)->path, RTLD_LAZY | RTLD_NOLOAD);
  if (!h)
    return nullptr;
  void *p = dlsym(h, symbol);
  dlclose(h);
  return p;
}

// Address of a local of the old version's frames, saved by the update.
void *OldLocal(int version, const char *name, const char *func) {
  const struct mvedsua_entry *e = FindByParts(version, name, func, nullptr);
  return e ? SavedLocalOld(e->key, Running() ? g_local_index : 0) : nullptr;
}

void *NewLocal(int version, const char *name, const char *func) {
  const struct mvedsua_entry *e = FindByParts(version, name, func, nullptr);
  return e && Running() ? SavedLocalNew(e->key, g_local_index) : nullptr;
}

void MaybeRequest() {
  if (!g_signalled || !g_next_version)
    return;
  char *path = g_next_version;
  g_next_version = nullptr;
  g_signalled = false;
  if (RequestUpdate(path, kUpdateFromProgram) < 0)
    Report("kitsune_signal_update: cannot request an update to %s: %s", path,
           strerror(errno));
  free(path);
}

// Copies an E_MANUAL_MIGRATE variable from the old version at its MIGRATE_*
// call: its hand-written transformer, or the bytes when its type is the same.
int MigrateManual(const struct mvedsua_entry &e, int from, int to) {
  if (HandXformFn fn = HandXformFor(to, e)) {
    BeginHandXforms(from, to);
    int ok = fn(e.addr);
    EndHandXforms();
    return ok ? 1 : 0;
  }
  const struct mvedsua_entry *o = FindIn(from, [&](const struct mvedsua_entry &x) {
    return x.kind == e.kind && strcmp(x.key, e.key) == 0;
  });
  if (!o)
    return 0;
  if (o->size != e.size || !o->type || !e.type || o->type->hash != e.type->hash) {
    Report("error: MIGRATE of '%s': its type changed and there is no "
           "hand-written transformer for it (%s); it keeps the new "
           "version's value",
           e.key, HandXformName(e).c_str());
    return 0;
  }
  memcpy(e.addr, o->addr, e.size);
  return 1;
}

} // namespace

HandXformFn HandXformFor(int version, const struct mvedsua_entry &e) {
  if (version < 0 || e.kind == MVEDSUA_ENTRY_FUNCTION)
    return nullptr;
  const void *base = GetVersion(version)->base;
  for (int i = 0; i < g_n_xforms; ++i) {
    const HandXform &x = g_xforms[i];
    if (x.base == base && Matches(e, x.name, x.func, x.file))
      return x.fn;
  }
  return nullptr;
}

std::string HandXformName(const struct mvedsua_entry &e) {
  KeyParts k = SplitKey(e.key);
  std::string file = MangleFile(k.file.c_str());
  switch (e.kind) {
  case MVEDSUA_ENTRY_STATIC:
    return "STATIC_XFORM(" + file + ", " + k.name + ")";
  case MVEDSUA_ENTRY_LOCAL_STATIC:
    return "LOCAL_STATIC_XFORM(" + file + ", " + k.func + ", " + k.name + ")";
  case MVEDSUA_ENTRY_LOCAL:
    return "LOCAL_XFORM(" + k.func + ", " + k.name + ")";
  default:
    return "GLOBAL_XFORM(" + k.name + ")";
  }
}

void BeginHandXforms(int from, int to) {
  g_run_from = from;
  g_run_to = to;
  g_local_index = 0;
}

void SetHandLocalIndex(uint64_t index) { g_local_index = index; }

void EndHandXforms() { g_run_from = g_run_to = -1; }

void PrepareKitsuneHooks(void *handle) {
  auto Find = [&](const char *name) {
    return handle ? reinterpret_cast<void (*)(void)>(dlsym(handle, name))
                  : nullptr;
  };
  g_prestart = Find("_kitsune_prestart_xform");
  g_mainupdate = Find("_kitsune_mainupdate_xform");
}

// A hook may edit the threads the update relaunches (kitsune_threads_*):
// its edits of each ktthread_info are applied when it returns.
static void RunThreadHook(void (*hook)(void)) {
  if (!hook)
    return;
  g_thread_edits.clear();
  g_thread_cursor = 0;
  g_in_thread_hook = true;
  hook();
  g_in_thread_hook = false;
  for (const ThreadEdit &e : g_thread_edits)
    if (!e.removed)
      SetParkedThreadStart(e.slot, e.info.start_fun, e.info.arg);
  g_thread_edits.clear();
}

void RunPrestartHook() {
  void (*hook)(void) = g_prestart;
  g_prestart = nullptr;
  RunThreadHook(hook);
}

void RunMainUpdateHook() {
  void (*hook)(void) = g_mainupdate;
  g_mainupdate = nullptr;
  RunThreadHook(hook);
}

static bool InThreadHook(const char *fn) {
  if (g_in_thread_hook)
    return true;
  Report("error: %s: the threads an update relaunches can only be edited in "
         "_kitsune_prestart_xform or _kitsune_mainupdate_xform; ignored",
         fn);
  return false;
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT void kitsune_signal_update(void) {
  pthread_mutex_lock(&g_request_lock);
  g_signalled = true;
  MaybeRequest();
  pthread_mutex_unlock(&g_request_lock);
}

MVEDSUA_EXPORT void kitsune_set_next_version(char *path) {
  pthread_mutex_lock(&g_request_lock);
  free(g_next_version);
  g_next_version = path ? strdup(path) : nullptr;
  MaybeRequest();
  pthread_mutex_unlock(&g_request_lock);
}

MVEDSUA_EXPORT void kitsune_clear_request(void) {
  pthread_mutex_lock(&g_request_lock);
  g_signalled = false;
  free(g_next_version);
  g_next_version = nullptr;
  pthread_mutex_unlock(&g_request_lock);
}

MVEDSUA_EXPORT void kitsune_do_automigrate(void) {
  // The update migrated every variable that is not E_MANUAL_MIGRATE before
  // the new version's main started.
}

MVEDSUA_EXPORT int kitsune_init_inplace(void) {
  Report("error: kitsune_init_inplace is the entry point Kitsune's driver "
         "called; mvedsua-run (or `driver`) starts a version's main itself");
  return -1;
}

MVEDSUA_EXPORT int kitsune_has_updated(void) { return PreviousVersion() >= 0; }

MVEDSUA_EXPORT void *kitsune_get_symbol_addr_old(const char *name,
                                                 const char *func,
                                                 const char *file,
                                                 const char *) {
  int v = OldVersion();
  if (func && !file)
    return OldLocal(v, name, func);
  const struct mvedsua_entry *e = FindByParts(v, name, func, file);
  return e ? e->addr : (!func && !file ? VersionSymbol(v, name) : nullptr);
}

MVEDSUA_EXPORT void *kitsune_get_symbol_addr_new(const char *name,
                                                 const char *func,
                                                 const char *file,
                                                 const char *) {
  int v = NewVersion();
  if (func && !file)
    return NewLocal(v, name, func);
  const struct mvedsua_entry *e = FindByParts(v, name, func, file);
  return e ? e->addr : (!func && !file ? VersionSymbol(v, name) : nullptr);
}

MVEDSUA_EXPORT void *kitsune_get_val(const char *symbol) {
  return VersionSymbol(OldVersion(), symbol);
}

MVEDSUA_EXPORT void *kitsune_get_cur_val(const char *symbol) {
  return VersionSymbol(NewVersion(), symbol);
}

MVEDSUA_EXPORT void *kitsune_lookup_key_old(const char *key) {
  const struct mvedsua_entry *e = FindByKey(OldVersion(), key);
  return e ? e->addr : nullptr;
}

MVEDSUA_EXPORT void *kitsune_lookup_key_new(const char *key) {
  const struct mvedsua_entry *e = FindByKey(NewVersion(), key);
  return e ? e->addr : nullptr;
}

MVEDSUA_EXPORT int kitsune_old_address_matches(const char *name, void *ptr) {
  int v = OldVersion();
  const struct mvedsua_entry *e = FindIn(v, [&](const struct mvedsua_entry &x) {
    return x.key && name && strcmp(x.key, name) == 0;
  });
  void *addr = e ? e->addr : VersionSymbol(v, name);
  return addr && addr == ptr;
}

namespace {
// The names of DEF_XFORM_FUNC_PTR's list (its #__VA_ARGS__), spaces and a
// leading '&' dropped; empty when the list is not n plain names.
std::vector<std::string> FuncPtrNames(const char *list, unsigned long n) {
  std::vector<std::string> names(1);
  for (const char *p = list ? list : ""; *p; ++p) {
    if (*p == ',')
      names.emplace_back();
    else if (*p == '&' && names.back().empty())
      continue;
    else if (*p != ' ' && *p != '\t' && *p != '\n')
      names.back() += *p;
  }
  for (const std::string &name : names) {
    bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name)
      plain &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_';
    if (!plain)
      return {};
  }
  return names.size() == n ? names : std::vector<std::string>();
}

// Whether `fn` is the old version's function `name`: an external one, or a
// static one of `file` (where DEF_XFORM_FUNC_PTR is: a file keeps its name).
bool IsOldFunction(const std::string &name, const char *file, void *fn) {
  int v = OldVersion();
  const struct mvedsua_entry *e = FindIn(v, [&](const struct mvedsua_entry &x) {
    if (x.kind != MVEDSUA_ENTRY_FUNCTION || x.addr != fn)
      return false;
    KeyParts k = SplitKey(x.key);
    return k.name == name && k.func.empty() &&
           (k.file.empty() || MangleFile(k.file.c_str()) == MangleFile(file));
  });
  return e || (fn && VersionSymbol(v, name.c_str()) == fn);
}
} // namespace

// DEF_XFORM_FUNC_PTR's function: new_fns[i] when old_fn is the old version's
// function names[i], else old_fn.
MVEDSUA_EXPORT void *__kitsune_rt_xform_func_ptr(void *old_fn, const char *file,
                                                 const char *names,
                                                 void *const *new_fns,
                                                 unsigned long n) {
  if (!old_fn)
    return old_fn;
  std::vector<std::string> list = FuncPtrNames(names, n);
  if (list.empty()) {
    Report("error: DEF_XFORM_FUNC_PTR in %s: '%s' is not a list of function "
           "names; the pointer is left as it is",
           file ? file : "?", names ? names : "");
    return old_fn;
  }
  for (unsigned long i = 0; i < n; ++i)
    if (IsOldFunction(list[i], file ? file : "", old_fn))
      return new_fns[i];
  return old_fn;
}

MVEDSUA_EXPORT int __kitsune_rt_migrate(const char *, const char *,
                                        const char *, void *addr,
                                        unsigned long) {
  if (!IsUpdating())
    return 0;
  int to = CurrentVersion(), from = PreviousVersion();
  const struct mvedsua_entry *e = FindIn(to, [&](const struct mvedsua_entry &x) {
    return x.kind != MVEDSUA_ENTRY_FUNCTION && x.addr == addr;
  });
  if (!e || !(e->annotations & MVEDSUA_ANNOT_NO_MIGRATE))
    return 1; // the update moved it (or it is not registered state)
  return MigrateManual(*e, from, to);
}

MVEDSUA_EXPORT void __kitsune_rt_register_xform(const char *file,
                                                const char *func,
                                                const char *name,
                                                int (*fn)(void *)) {
  Dl_info info;
  if (!fn || !name || !dladdr((void *)fn, &info)) {
    Report("error: ignoring a hand-written transformer without a name or "
           "object");
    return;
  }
  if (g_n_xforms == kMaxHandXforms) {
    Report("error: %s: too many hand-written transformers (at most %d)",
           info.dli_fname, kMaxHandXforms);
    return;
  }
  g_xforms[g_n_xforms++] = {file, func, name, fn, info.dli_fbase};
}

// Kitsune's threads are mvedsua's managed threads (Threads.h): they stop at
// their update points for an update and are relaunched in the new version.
// Kitsune's condition-wait wrapper quiesces inside the wait: an update point
// of its own, named after it, which the relaunched thread's code reaches
// again in the new version.
MVEDSUA_EXPORT int kitsune_pthread_create(pthread_t *thread,
                                          const pthread_attr_t *attr,
                                          void *(*fn)(void *), void *arg) {
  return __mvedsua_rt_thread_create(thread, attr, fn, arg);
}

MVEDSUA_EXPORT int ktthreads_pthread_cond_wait(void *cond, void *mutex) {
  return __mvedsua_rt_cond_wait("ktthreads_pthread_cond_wait",
                                static_cast<pthread_cond_t *>(cond),
                                static_cast<pthread_mutex_t *>(mutex), nullptr);
}

MVEDSUA_EXPORT int ktthreads_pthread_cond_timedwait(void *cond, void *mutex,
                                                    const void *timeout) {
  return __mvedsua_rt_cond_wait(
      "ktthreads_pthread_cond_timedwait", static_cast<pthread_cond_t *>(cond),
      static_cast<pthread_mutex_t *>(mutex),
      static_cast<const struct timespec *>(timeout));
}

MVEDSUA_EXPORT void ktthreads_update_callback(void (*callback)(void *),
                                              void *args) {
  __mvedsua_rt_thread_on_update(callback, args);
}

// Kitsune slept in a timed condition wait, so that an update could wake it
// early; so does this one (the wait is an update point).
MVEDSUA_EXPORT void ktthreads_ms_sleep(int ms) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  until.tv_sec += until.tv_nsec / 1000000000L;
  until.tv_nsec %= 1000000000L;
  pthread_mutex_lock(&m);
  __mvedsua_rt_cond_wait("ktthreads_ms_sleep", &c, &m, &until); // early when an
  pthread_mutex_unlock(&m);                                    // update woke it
}

// Kitsune's heap lists (include/ktheaptrack.h): the program's own state, a
// global list of malloc'd nodes that an update moves like any other global.
// The layouts are the header's.
struct kitsune_heaplist_node {
  void *addr;
  kitsune_heaplist_node *next;
};
struct kitsune_heaplist {
  kitsune_heaplist_node *begin, *last;
};

MVEDSUA_EXPORT void kitsune_heaplist_init(kitsune_heaplist *list) {
  list->begin = list->last = nullptr;
}

MVEDSUA_EXPORT void kitsune_heaplist_add(kitsune_heaplist *list, void *addr) {
  auto *n = static_cast<kitsune_heaplist_node *>(
      malloc(sizeof(kitsune_heaplist_node)));
  if (!n) {
    Report("error: NOTE_HEAP: out of memory; %p is not listed", addr);
    return;
  }
  *n = {addr, nullptr};
  if (list->last)
    list->last->next = n;
  else
    list->begin = n;
  list->last = n;
}

MVEDSUA_EXPORT int kitsune_heaplist_del(kitsune_heaplist *list, void *addr) {
  kitsune_heaplist_node *prev = nullptr;
  for (kitsune_heaplist_node *n = list->begin; n; prev = n, n = n->next) {
    if (n->addr != addr)
      continue;
    (prev ? prev->next : list->begin) = n->next;
    if (list->last == n)
      list->last = prev;
    free(n);
    return 1;
  }
  return 0;
}

MVEDSUA_EXPORT kitsune_heaplist_node *
kitsune_heaplist_begin(kitsune_heaplist *list) {
  return list->begin;
}

MVEDSUA_EXPORT kitsune_heaplist_node *kitsune_heaplist_end(kitsune_heaplist *) {
  return nullptr;
}

MVEDSUA_EXPORT kitsune_heaplist_node *
kitsune_heaplist_last(kitsune_heaplist *list) {
  return list->last;
}

MVEDSUA_EXPORT kitsune_heaplist_node *
kitsune_heaplist_next(kitsune_heaplist_node *it) {
  return it ? it->next : nullptr;
}

MVEDSUA_EXPORT int kitsune_heaplist_isempty(kitsune_heaplist *list) {
  return list->begin == nullptr;
}

// Kitsune's editing of the threads an update relaunches, from the pre-start
// or main-update hook: each one parked for the update, in creation order,
// with the new version's start function and argument.
MVEDSUA_EXPORT void kitsune_threads_reset(void) {
  g_thread_edits.clear();
  g_thread_cursor = 0;
  if (!InThreadHook("kitsune_threads_reset"))
    return;
  for (int k = NextParkedThread(0); k > 0; k = NextParkedThread(k)) {
    ThreadEdit e{};
    e.slot = k;
    ParkedThreadStart(k, &e.info.start_fun, &e.info.arg, &e.info.update_pt);
    g_thread_edits.push_back(e);
  }
}

MVEDSUA_EXPORT void *kitsune_threads_next(void) {
  if (g_thread_cursor >= g_thread_edits.size())
    return nullptr;
  return &g_thread_edits[g_thread_cursor++].info;
}

MVEDSUA_EXPORT void kitsune_thread_remove(void) {
  if (!InThreadHook("kitsune_thread_remove"))
    return;
  if (g_thread_cursor == 0) {
    Report("error: kitsune_thread_remove: no thread (call kitsune_threads_next "
           "first); ignored");
    return;
  }
  ThreadEdit &e = g_thread_edits[g_thread_cursor - 1];
  e.removed = true;
  RemoveParkedThread(e.slot);
}

MVEDSUA_EXPORT void kitsune_thread_add(void *arg, void *(*fn)(void *),
                                       const char *update_pt,
                                       pthread_attr_t *attr) {
  if (!InThreadHook("kitsune_thread_add"))
    return;
  if (!fn || !update_pt) {
    Report("error: kitsune_thread_add: needs a start function and the update "
           "point the thread updates from; ignored");
    return;
  }
  if (AddParkedThread(fn, arg, update_pt, attr) < 0)
    Report("error: kitsune_thread_add: no free thread slot; the thread is not "
           "started");
}
