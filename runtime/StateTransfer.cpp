// StateTransfer.cpp: the state half of an in-place update.
//
// Every migratable data entry of the new version (global, static, local
// static; not const, not MVEDSUA_NO_MIGRATE) takes the value of the old
// version's entry with the same (kind, key). Equal type hashes mean equal
// layouts all the way through pointers (docs/registry.md), so the bytes are
// copied; a changed type needs a transformer the new version carries.
//
// Copied bytes may hold pointers into the old version: to its functions, or
// into its data objects. A type-directed walk over the old state and the heap
// reachable from it finds them and rewrites each to the new version's object
// with the same key. The walk runs while planning, before anything is
// written, so an update that cannot be completed (a function the new version
// lacks) is refused with nothing changed; planning records the fix-ups and
// the commit applies them. This file runs on the update's slow path only, so
// it allocates freely.
#include "StateTransfer.h"
#include "Threads.h"

#include "Kitsune.h"
#include "Transformers.h"

#include <algorithm>
#include <ctype.h>
#include <pthread.h>
#include <set>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unordered_map>
#include <vector>

namespace mvedsua {

int g_restoring_locals;

namespace {

// Saved locals are matched to the thread (Threads.h's slot) whose frames
// they came from; relaunched threads restore theirs concurrently.
pthread_mutex_t g_locals_lock = PTHREAD_MUTEX_INITIALIZER;

struct LocalsLock {
  LocalsLock() { pthread_mutex_lock(&g_locals_lock); }
  ~LocalsLock() { pthread_mutex_unlock(&g_locals_lock); }
};

struct Copy {
  const struct mvedsua_entry *from;
  const struct mvedsua_entry *to;
};

// A migrated local saved from the old frames. Plugin locals have an entry;
// noted ones (no plugin) only a name.
struct SavedLocal {
  const struct mvedsua_entry *entry = nullptr;
  const char *name = nullptr;
  std::vector<char> bytes;
  int thread = 0; // Threads.h's slot of the frame's thread (0: main)
  bool consumed = false;
  // A local whose type changed, written by the state transformer: the new
  // version's entry, and the value the transformer wrote (has_new).
  const struct mvedsua_entry *to_entry = nullptr;
  std::vector<char> transformed;
  bool has_new = false;
};

// A pointer to rewrite. Slots in the heap are shared with the old version,
// so they are written only once nothing can fail any more.
struct Fixup {
  void **slot;
  void *value;
  bool in_heap;
};

class Walker;

struct Plan {
  int from = -1, to = -1;
  std::vector<Copy> copies;
  std::vector<SavedLocal> locals;
  std::vector<Fixup> fixups;
  uint64_t visited = 0;
  const struct mvedsua_xform *xform = nullptr; // the new version's transformer
  uint64_t transformed = 0;                    // entries it writes
  // Entries and locals written by hand-written transformers (kitsune.h's
  // GLOBAL_XFORM and friends), run before the xfgen transformer.
  std::vector<const struct mvedsua_entry *> hand;
  Walker *walker = nullptr;                    // its remap service
  ~Plan();
};

Plan *g_plan;
// Locals saved by managed threads as they parked, before the plan exists.
std::vector<SavedLocal> g_staged;

// ---- entries --------------------------------------------------------------

template <typename Fn> void ForEachEntry(int v, Fn fn) {
  for (int m = 0; m < ModuleCount(); ++m) {
    if (ModuleVersion(m) != v)
      continue;
    const struct mvedsua_module *mod = GetModule(m);
    for (uint64_t i = 0; i < mod->n_entries; ++i)
      fn(mod->entries[i]);
  }
}

// A registered object with an address. A thread-local one has one copy per
// thread, which its registry address does not name (the plugin refuses them
// unless MVEDSUA_NO_MIGRATE; hand-built registries may still list one).
bool IsData(const struct mvedsua_entry &e) {
  return e.kind <= MVEDSUA_ENTRY_LOCAL_STATIC && e.addr && e.size > 0 &&
         !(e.flags & MVEDSUA_ENTRY_THREAD_LOCAL);
}

bool Migrates(const struct mvedsua_entry &e) {
  return IsData(e) && !(e.flags & MVEDSUA_ENTRY_CONST) &&
         !(e.annotations & MVEDSUA_ANNOT_NO_MIGRATE);
}

uint64_t TypeHash(const struct mvedsua_entry *e) {
  return e->type ? e->type->hash : 0;
}

std::string KindKey(uint32_t kind, const char *key) {
  return std::string(1, char('0' + kind)) + (key ? key : "");
}

using EntryMap = std::unordered_map<std::string, const struct mvedsua_entry *>;

EntryMap IndexEntries(int v) {
  EntryMap map;
  ForEachEntry(v, [&](const struct mvedsua_entry &e) {
    map.emplace(KindKey(e.kind, e.key), &e);
  });
  return map;
}

// "struct node *", "int[4]": enough to tell two types apart in a message.
std::string TypeName(const struct mvedsua_type *t) {
  if (!t)
    return "void";
  if (t->kind == MVEDSUA_TYPE_POINTER)
    return TypeName(t->target) + " *";
  if (t->kind == MVEDSUA_TYPE_ARRAY)
    return TypeName(t->target) + "[" + std::to_string(t->count) + "]";
  const char *name = t->name && *t->name ? t->name : "<anonymous>";
  const char *arrow = strstr(name, " -> ");
  return arrow ? std::string(name, size_t(arrow - name)) : std::string(name);
}

std::string TypeChange(const struct mvedsua_type *from,
                       const struct mvedsua_type *to) {
  std::string a = TypeName(from), b = TypeName(to);
  return a == b ? a + ": layout differs" : a + " -> " + b;
}

} // namespace

namespace {

// ---- the walk -------------------------------------------------------------

// Pairs (address, type) already walked: sharing and cycles are walked once.
// Open addressing, grown at half load; the walk may see millions of objects.
class VisitedSet {
public:
  ~VisitedSet() { free(slots_); }
  bool Insert(const void *addr, const void *type) {
    if ((used_ + 1) * 2 > cap_)
      Grow();
    return Put(uintptr_t(addr), uintptr_t(type));
  }
  size_t size() const { return used_; }

private:
  struct Slot {
    uintptr_t addr, type;
  };
  static size_t Hash(uintptr_t a, uintptr_t t) {
    uint64_t h = (a ^ (t * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return size_t(h ^ (h >> 32));
  }
  bool Put(uintptr_t a, uintptr_t t) {
    for (size_t i = Hash(a, t) & (cap_ - 1);; i = (i + 1) & (cap_ - 1)) {
      if (slots_[i].addr == 0) {
        slots_[i] = {a, t};
        ++used_;
        return true;
      }
      if (slots_[i].addr == a && slots_[i].type == t)
        return false;
    }
  }
  void Grow() {
    Slot *old = slots_;
    size_t old_cap = cap_;
    cap_ = cap_ ? cap_ * 2 : 1024;
    slots_ = static_cast<Slot *>(calloc(cap_, sizeof(Slot)));
    if (!slots_) {
      Report("fatal: out of memory walking the state of an update");
      abort();
    }
    used_ = 0;
    for (size_t i = 0; i < old_cap; ++i)
      if (old[i].addr)
        Put(old[i].addr, old[i].type);
    free(old);
  }
  Slot *slots_ = nullptr;
  size_t cap_ = 0, used_ = 0;
};

// MayHavePointers' answers. It is asked several times per walked object, so
// it is a small open-addressing table (type descriptors are few) rather than
// a node-based map.
class TypeMemo {
public:
  ~TypeMemo() { free(slots_); }
  // 1 or 0 once Put, -1 before.
  int Get(const void *t) const {
    if (!cap_)
      return -1;
    for (size_t i = Hash(t) & (cap_ - 1);; i = (i + 1) & (cap_ - 1)) {
      if (slots_[i].type == t)
        return slots_[i].value;
      if (!slots_[i].type)
        return -1;
    }
  }
  void Put(const void *t, bool value) {
    if ((used_ + 1) * 2 > cap_)
      Grow();
    size_t i = Hash(t) & (cap_ - 1);
    while (slots_[i].type && slots_[i].type != t)
      i = (i + 1) & (cap_ - 1);
    used_ += !slots_[i].type;
    slots_[i] = {t, value};
  }

private:
  struct Slot {
    const void *type;
    bool value;
  };
  static size_t Hash(const void *t) {
    return size_t((uintptr_t(t) >> 3) * 0x9e3779b97f4a7c15ull >> 20);
  }
  void Grow() {
    Slot *old = slots_;
    size_t old_cap = cap_;
    cap_ = cap_ ? cap_ * 2 : 64;
    slots_ = static_cast<Slot *>(calloc(cap_, sizeof(Slot)));
    if (!slots_) {
      Report("fatal: out of memory walking the state of an update");
      abort();
    }
    used_ = 0;
    for (size_t i = 0; i < old_cap; ++i)
      if (old[i].type)
        Put(old[i].type, old[i].value);
    free(old);
  }
  Slot *slots_ = nullptr;
  size_t cap_ = 0, used_ = 0;
};

// The process's readable memory, from /proc/self/maps, so a dangling or
// uninitialised pointer in the state refuses the update instead of crashing
// the walk (and, in place, the program). Best effort: a pointer to memory
// that was freed but is still mapped, or mapped again since, is followed.
class MemoryMap {
public:
  MemoryMap() {
    FILE *f = fopen("/proc/self/maps", "re");
    unsigned long lo, hi;
    char perms[8];
    while (f && fscanf(f, "%lx-%lx %7s%*[^\n]", &lo, &hi, perms) == 3)
      if (perms[0] == 'r')
        Add(lo, hi);
    if (f)
      fclose(f);
  }
  bool Readable(uintptr_t p, uint64_t len) {
    // Most pointers lead into the range the previous one did (the heap).
    if (p >= last_.start && p < last_.end)
      return len <= last_.end - p;
    auto it = std::upper_bound(
        ranges_.begin(), ranges_.end(), p,
        [](uintptr_t v, const Range &r) { return v < r.start; });
    if (it == ranges_.begin() || p >= (it - 1)->end)
      return false;
    last_ = *(it - 1);
    return len <= last_.end - p;
  }

private:
  struct Range {
    uintptr_t start, end;
  };
  void Add(uintptr_t lo, uintptr_t hi) { // maps are sorted: merge neighbours
    if (!ranges_.empty() && ranges_.back().end == lo)
      ranges_.back().end = hi;
    else
      ranges_.push_back({lo, hi});
  }
  std::vector<Range> ranges_;
  Range last_ = {0, 0};
};

// An old version's data object or function, by address.
struct OldObject {
  uintptr_t start, end; // functions: end == start + 1
  const struct mvedsua_entry *old_entry;
  void *target;  // the new version's object or function; null if none
  bool same_type;
};

struct WorkItem {
  const char *addr;
  const struct mvedsua_type *type;
  uint64_t count;
};

// A root: an object the walk starts from. Slots inside [from, from+size) are
// written at the same offset in `to` (the new version's copy).
struct Root {
  const char *name;
  const char *from;
  char *to;
  uint64_t size;
};

class Walker {
public:
  Walker(int to, const char *to_name, Plan &plan)
      : to_name_(to_name), plan_(plan) {
    IndexOldObjects(to);
  }

  // Walks one root and everything it reaches that was not walked yet.
  void WalkRoot(const Root &root, const struct mvedsua_type *type,
                uint32_t annot, const char *arg);

  std::vector<std::string> missing; // refusals: functions the new one lacks
  std::vector<std::string> unreadable; // refusals: pointers to no memory

  // A transformer's __mvedsua_xf_remap: the same rules, applied at once.
  static void *RemapNow(void *self, void *old_ptr);
  // The same for the runtime: 1 remapped, 0 not in an old version (kept),
  // -1 a function the new version lacks.
  int RemapFor(void *old_ptr, void **out) const;

private:
  void IndexOldObjects(int to);
  const OldObject *FindOld(uintptr_t p) const;
  void Scan(const char *base, const struct mvedsua_type *t);
  void ScanStruct(const char *base, const struct mvedsua_type *t);
  void Slot(const char *slot, const struct mvedsua_type *ptr, uint32_t annot,
            const char *arg, const char *outer, const struct mvedsua_type *st);
  bool Remap(const char *slot, uintptr_t p);
  bool MayHavePointers(const struct mvedsua_type *t);
  static bool OnlyFunctionPointers(const struct mvedsua_type *u);
  void FunctionUnion(const char *slot);
  void Rewrite(const char *slot, void *value);
  void WarnUnion(const struct mvedsua_type *t);
  void Unreadable(uintptr_t p, const struct mvedsua_type *ptr);
  void Refuse(std::vector<std::string> &list, const std::string &why);

  const char *to_name_;
  Plan &plan_;
  std::vector<OldObject> old_;
  uintptr_t old_lo_ = UINTPTR_MAX, old_hi_ = 0;
  TypeMemo has_pointers_;
  VisitedSet visited_;
  std::vector<WorkItem> work_;
  std::set<std::string> warned_;
  std::set<std::string> refused_;
  MemoryMap memory_;
  const Root *root_ = nullptr;  // the root being walked
  bool in_root_object_ = false; // scanning the root itself, not its heap
};

void Walker::IndexOldObjects(int to) {
  EntryMap fresh = IndexEntries(to);
  for (int v = 0; v < VersionCount(); ++v) {
    if (v == to)
      continue;
    ForEachEntry(v, [&](const struct mvedsua_entry &e) {
      bool fn = e.kind == MVEDSUA_ENTRY_FUNCTION;
      if (!e.addr || (!fn && !IsData(e)))
        return;
      auto it = fresh.find(KindKey(e.kind, e.key));
      const struct mvedsua_entry *n = it == fresh.end() ? nullptr : it->second;
      uintptr_t start = uintptr_t(e.addr);
      old_.push_back({start, start + (fn ? 1 : e.size), &e,
                      n ? n->addr : nullptr,
                      n && TypeHash(n) == TypeHash(&e) && n->size == e.size});
    });
  }
  std::sort(old_.begin(), old_.end(),
            [](const OldObject &a, const OldObject &b) { return a.start < b.start; });
  for (const OldObject &o : old_) {
    old_lo_ = std::min(old_lo_, o.start);
    old_hi_ = std::max(old_hi_, o.end);
  }
}

const OldObject *Walker::FindOld(uintptr_t p) const {
  if (p < old_lo_ || p >= old_hi_) // the common case: a heap pointer
    return nullptr;
  auto it = std::upper_bound(
      old_.begin(), old_.end(), p,
      [](uintptr_t v, const OldObject &o) { return v < o.start; });
  if (it == old_.begin())
    return nullptr;
  --it;
  return p < it->end ? &*it : nullptr;
}

// Whether an object of type t can hold a pointer the walk must look at;
// char buffers and pointer-free structs are then skipped whole. Recursion
// stops at pointers, so self-referential types terminate.
bool Walker::MayHavePointers(const struct mvedsua_type *t) {
  if (!t)
    return false;
  int known = has_pointers_.Get(t);
  if (known >= 0)
    return known;
  bool has = false;
  switch (t->kind) {
  case MVEDSUA_TYPE_POINTER:
    has = true;
    break;
  case MVEDSUA_TYPE_ARRAY:
    has = MayHavePointers(t->target);
    break;
  case MVEDSUA_TYPE_STRUCT:
  case MVEDSUA_TYPE_UNION:
    for (uint64_t i = 0; i < t->count && !has; ++i)
      has = !(t->fields[i].annotations & MVEDSUA_ANNOT_OPAQUE) &&
            MayHavePointers(t->fields[i].type);
    break;
  default:
    break;
  }
  has_pointers_.Put(t, has);
  return has;
}

void Walker::Rewrite(const char *slot, void *value) {
  void **at = reinterpret_cast<void **>(const_cast<char *>(slot));
  bool in_root = in_root_object_ && slot >= root_->from &&
                 slot < root_->from + root_->size;
  if (in_root && root_->to)
    at = reinterpret_cast<void **>(root_->to + (slot - root_->from));
  plan_.fixups.push_back({at, value, !in_root});
}

void *Walker::RemapNow(void *self, void *old_ptr) {
  const OldObject *o = static_cast<Walker *>(self)->FindOld(uintptr_t(old_ptr));
  if (!o || !o->target)
    return old_ptr;
  uintptr_t off = uintptr_t(old_ptr) - o->start;
  if (o->old_entry->kind == MVEDSUA_ENTRY_FUNCTION)
    return off == 0 ? o->target : old_ptr;
  return o->same_type || off == 0 ? static_cast<char *>(o->target) + off
                                  : old_ptr;
}

int Walker::RemapFor(void *old_ptr, void **out) const {
  const OldObject *o = FindOld(uintptr_t(old_ptr));
  *out = old_ptr;
  if (!o)
    return 0;
  if (o->old_entry->kind == MVEDSUA_ENTRY_FUNCTION && !o->target)
    return -1;
  *out = RemapNow(const_cast<Walker *>(this), old_ptr);
  return 1;
}

// Rules (i) and (ii) of docs/updates.md. True when p pointed into an old
// version (rewritten or deliberately kept): such a pointer is not followed.
bool Walker::Remap(const char *slot, uintptr_t p) {
  const OldObject *o = FindOld(p);
  if (!o)
    return false;
  const struct mvedsua_entry *e = o->old_entry;
  if (e->kind == MVEDSUA_ENTRY_FUNCTION) {
    if (p != o->start)
      return false; // inside a function's code: not a function pointer
    if (o->target)
      Rewrite(slot, o->target);
    else
      Refuse(missing, "'" + std::string(e->key) + "' (reached from '" +
                          root_->name + "')");
    return true;
  }
  uintptr_t off = p - o->start;
  if (o->target && (o->same_type || off == 0)) {
    Rewrite(slot, static_cast<char *>(o->target) + off);
  } else if (!(e->flags & MVEDSUA_ENTRY_CONST)) {
    std::string w = std::string("'") + root_->name + "' -> '" + e->key + "'";
    if (warned_.insert(w).second)
      Report("warning: %s: %s points into the old version's '%s', which %s has "
             "no same-typed counterpart of: the pointer is kept",
             to_name_, root_->name, e->key, to_name_);
  }
  return true;
}

// An integer of type t at `at` (1 when t is not an integer's size).
uint64_t ReadCount(const char *at, const struct mvedsua_type *t) {
  bool is_signed = t->kind == MVEDSUA_TYPE_INT;
  switch (t->size) {
  case 1: return is_signed ? uint64_t(*(const int8_t *)at) : *(const uint8_t *)at;
  case 2: return is_signed ? uint64_t(*(const int16_t *)at) : *(const uint16_t *)at;
  case 4: return is_signed ? uint64_t(*(const int32_t *)at) : *(const uint32_t *)at;
  case 8: return *(const uint64_t *)at;
  }
  return 1;
}

// The element count an ARRAY/PTRARRAY annotation gives: a constant, or the
// value of a sibling integer field of the struct at `outer`.
uint64_t AnnotatedCount(const char *arg, const char *outer,
                        const struct mvedsua_type *st) {
  if (!arg || !*arg)
    return 1;
  char *end;
  unsigned long long n = strtoull(arg, &end, 0);
  if (*end == '\0')
    return n;
  for (uint64_t i = 0; outer && st && i < st->count; ++i) {
    const struct mvedsua_field &f = st->fields[i];
    if (strcmp(f.name, arg) != 0 || !f.type || f.size_bits % 8 != 0)
      continue;
    return ReadCount(outer + f.offset_bits / 8, f.type);
  }
  return 1;
}

// A global's ARRAY/PTRARRAY count that names another global of its file
// (`conn **conns MVEDSUA_PTRARRAY(max_fds)`): that global's value in the
// old version, as a number for AnnotatedCount; the name itself (counted as
// 1) when the module has no such integer.
std::string GlobalCount(int v, const struct mvedsua_entry *root) {
  const char *arg = root->annot_arg;
  std::string name = arg ? arg : "";
  if (!(root->annotations & (MVEDSUA_ANNOT_ARRAY | MVEDSUA_ANNOT_PTRARRAY)) ||
      name.empty() || isdigit((unsigned char)name[0]))
    return name;
  for (int m = 0; m < ModuleCount(); ++m) {
    const struct mvedsua_module *mod = GetModule(m);
    if (ModuleVersion(m) != v || root < mod->entries ||
        root >= mod->entries + mod->n_entries)
      continue;
    for (uint64_t i = 0; i < mod->n_entries; ++i) {
      const struct mvedsua_entry &e = mod->entries[i];
      std::string key = e.key ? e.key : "";
      bool named = key == name || (key.size() > name.size() &&
                                   key.compare(key.size() - name.size() - 1,
                                               std::string::npos, "/" + name) == 0);
      if (named && IsData(e) && e.type &&
          (e.type->kind == MVEDSUA_TYPE_INT || e.type->kind == MVEDSUA_TYPE_UINT))
        return std::to_string(ReadCount(static_cast<const char *>(e.addr), e.type));
    }
  }
  return name;
}

void Walker::Slot(const char *slot, const struct mvedsua_type *ptr,
                  uint32_t annot, const char *arg, const char *outer,
                  const struct mvedsua_type *st) {
  uintptr_t p = *reinterpret_cast<const uintptr_t *>(slot);
  if (!p || Remap(slot, p))
    return;
  const struct mvedsua_type *to = ptr->target;
  if (!to || to->kind == MVEDSUA_TYPE_FUNCTION ||
      to->kind == MVEDSUA_TYPE_OPAQUE || !MayHavePointers(to))
    return;
  uint64_t count = 1;
  if (annot & (MVEDSUA_ANNOT_ARRAY | MVEDSUA_ANNOT_PTRARRAY))
    count = AnnotatedCount(arg, outer, st);
  // count < 2^40: a sibling length read as garbage must not send the walk
  // through the whole address space.
  uint64_t bytes;
  if (count == 0 || count > (uint64_t(1) << 40) ||
      __builtin_mul_overflow(count, to->size, &bytes))
    return;
  if (!memory_.Readable(p, bytes))
    return Unreadable(p, ptr);
  if (visited_.Insert((void *)p, to))
    work_.push_back({reinterpret_cast<const char *>(p), to, count});
}

// Each distinct reason once, and not without bound: a million list nodes
// may share one missing function.
void Walker::Refuse(std::vector<std::string> &list, const std::string &why) {
  if (list.size() < 64 && refused_.insert(why).second)
    list.push_back(why);
}

void Walker::Unreadable(uintptr_t p, const struct mvedsua_type *ptr) {
  char addr[32];
  snprintf(addr, sizeof addr, "%#lx", (unsigned long)p);
  Refuse(unreadable, TypeName(ptr) + " " + addr + " (reached from '" +
                         root_->name + "')");
}

// A union whose members are all function pointers (libevent's
// evcb_cb_union): whichever member is live, the slot holds a function
// address, so it is remapped like a function pointer. Members marked
// MVEDSUA_OPAQUE do not count; any other member (an integer, a data pointer,
// a struct) leaves the union to WarnUnion.
bool Walker::OnlyFunctionPointers(const struct mvedsua_type *u) {
  bool any = false;
  for (uint64_t i = 0; i < u->count; ++i) {
    const struct mvedsua_field &f = u->fields[i];
    if (f.annotations & MVEDSUA_ANNOT_OPAQUE)
      continue;
    const struct mvedsua_type *t = f.type;
    if (!t || t->kind != MVEDSUA_TYPE_POINTER || !t->target ||
        t->target->kind != MVEDSUA_TYPE_FUNCTION || f.offset_bits != 0 ||
        f.size_bits != 8 * sizeof(void *))
      return false;
    any = true;
  }
  return any;
}

// Rule (i) only: the value is remapped when it is exactly the start of an old
// version's registered function (refused when the new version lacks it);
// anything else (null, libc, code that is not registered) is kept.
void Walker::FunctionUnion(const char *slot) {
  uintptr_t p = *reinterpret_cast<const uintptr_t *>(slot);
  const OldObject *o = p ? FindOld(p) : nullptr;
  if (o && o->old_entry->kind == MVEDSUA_ENTRY_FUNCTION && p == o->start)
    Remap(slot, p);
}

void Walker::WarnUnion(const struct mvedsua_type *t) {
  std::string w = std::string(root_->name) + "|" + TypeName(t);
  if (warned_.insert(w).second)
    Report("warning: %s: '%s' holds %s, a union with pointer members: its bytes "
           "are copied as they are and pointers in it are not remapped (mark "
           "the members MVEDSUA_OPAQUE to say that is intended)",
           to_name_, root_->name, TypeName(t).c_str());
}

void Walker::ScanStruct(const char *base, const struct mvedsua_type *t) {
  for (uint64_t i = 0; i < t->count; ++i) {
    const struct mvedsua_field &f = t->fields[i];
    if ((f.annotations & MVEDSUA_ANNOT_OPAQUE) || !MayHavePointers(f.type) ||
        f.offset_bits % 8 != 0)
      continue;
    const char *at = base + f.offset_bits / 8;
    if (f.type->kind == MVEDSUA_TYPE_POINTER)
      Slot(at, f.type, f.annotations, f.annot_arg, base, t);
    else
      Scan(at, f.type);
  }
}

// One object of type t at base: structure within it is walked by recursion
// (bounded by the type's nesting); pointers out of it go to the work list.
void Walker::Scan(const char *base, const struct mvedsua_type *t) {
  if (!MayHavePointers(t))
    return;
  switch (t->kind) {
  case MVEDSUA_TYPE_POINTER:
    return Slot(base, t, 0, nullptr, nullptr, nullptr);
  case MVEDSUA_TYPE_ARRAY:
    for (uint64_t i = 0; i < t->count; ++i)
      Scan(base + i * t->target->size, t->target);
    return;
  case MVEDSUA_TYPE_STRUCT:
    return ScanStruct(base, t);
  case MVEDSUA_TYPE_UNION:
    if (OnlyFunctionPointers(t))
      return FunctionUnion(base);
    return WarnUnion(t);
  default:
    return;
  }
}

void Walker::WalkRoot(const Root &root, const struct mvedsua_type *type,
                      uint32_t annot, const char *arg) {
  root_ = &root;
  in_root_object_ = true;
  if (type && type->kind == MVEDSUA_TYPE_POINTER)
    Slot(root.from, type, annot, arg, nullptr, nullptr);
  else if (type)
    Scan(root.from, type);
  in_root_object_ = false;
  while (!work_.empty()) {
    WorkItem w = work_.back();
    work_.pop_back();
    plan_.visited++;
    for (uint64_t i = 0; i < w.count; ++i)
      Scan(w.addr + i * w.type->size, w.type);
  }
}

// ---- planning -------------------------------------------------------------

// Matches the new version's entries with the old ones; changed types
// without a transformer are listed in *changed.
void MatchEntries(Plan &plan, std::vector<std::string> *changed) {
  EntryMap old = IndexEntries(plan.from);
  ForEachEntry(plan.to, [&](const struct mvedsua_entry &e) {
    if (!Migrates(e))
      return;
    if (plan.xform && TransformerWrites(plan.xform, e.kind, e.key)) {
      plan.transformed++;
      return;
    }
    if (HandXformFor(plan.to, e)) {
      plan.hand.push_back(&e);
      plan.transformed++;
      return;
    }
    auto it = old.find(KindKey(e.kind, e.key));
    if (it == old.end() || !IsData(*it->second))
      return; // a new variable keeps its initialiser
    const struct mvedsua_entry *o = it->second;
    if (TypeHash(o) == TypeHash(&e) && o->size == e.size) {
      plan.copies.push_back({o, &e});
    } else {
      changed->push_back("'" + std::string(e.key) + "' (" +
                         TypeChange(o->type, e.type) + ")");
    }
  });
}

// Saved locals need a same-typed local of the new version. A recursive
// function's local is saved once per frame but named once.
void MatchLocals(Plan &plan, std::vector<std::string> *changed) {
  EntryMap fresh = IndexEntries(plan.to);
  std::set<const struct mvedsua_entry *> named;
  for (SavedLocal &l : plan.locals) {
    if (!l.entry || !named.insert(l.entry).second)
      continue; // noted locals are matched by name and size on entry
    auto it = fresh.find(KindKey(MVEDSUA_ENTRY_LOCAL, l.entry->key));
    if (it == fresh.end())
      continue; // the new version no longer has it: it is dropped
    if (HandXformFor(plan.to, *it->second) &&
        !(plan.xform && TransformerWrites(plan.xform, MVEDSUA_ENTRY_LOCAL,
                                          l.entry->key))) {
      // Written by hand, frame by frame, whatever its type.
      for (SavedLocal &m : plan.locals)
        if (m.entry == l.entry)
          m.to_entry = it->second;
      plan.hand.push_back(it->second);
      continue;
    }
    // A transformer's spec rule may rewrite a local whose type is the same
    // (Kitsune's `main#q -> main#q : { $out = $in + 5; }`).
    bool Writes = plan.xform && TransformerWrites(plan.xform, MVEDSUA_ENTRY_LOCAL,
                                                  l.entry->key);
    if (!Writes && TypeHash(it->second) == TypeHash(l.entry) &&
        it->second->size == l.entry->size)
      continue;
    if (Writes) {
      // Every saved frame's copy: the transformer writes each one.
      for (SavedLocal &m : plan.locals)
        if (m.entry == l.entry)
          m.to_entry = it->second;
      continue;
    }
    changed->push_back("'" + std::string(l.entry->key) + "' (migrated local, " +
                       TypeChange(l.entry->type, it->second->type) + ")");
  }
}

// At most kShown items: a message is one line of bounded length (Report and
// the status keep 1 KiB), and a longer list is better read with
// `mvedsua-xfgen --explain`.
std::string JoinList(const std::vector<std::string> &items) {
  constexpr size_t kShown = 6;
  std::string out;
  for (size_t i = 0; i < items.size() && i < kShown; ++i)
    out += (i ? ", " : "") + items[i];
  if (items.size() > kShown)
    out += " and " + std::to_string(items.size() - kShown) + " more";
  return out;
}

void WalkOldState(Plan &plan, Walker &w) {
  for (const Copy &c : plan.copies) {
    if (c.to->annotations & MVEDSUA_ANNOT_OPAQUE)
      continue;
    Root r{c.to->key, static_cast<const char *>(c.from->addr),
           static_cast<char *>(c.to->addr), c.from->size};
    std::string count = GlobalCount(plan.from, c.from);
    w.WalkRoot(r, c.from->type, c.from->annotations, count.c_str());
  }
  for (SavedLocal &l : plan.locals) {
    if (!l.entry || !l.entry->type)
      continue; // noted locals have no type: bytes only
    if (l.to_entry)
      continue; // the transformer reads the old bytes as they are
    Root r{l.entry->key, l.bytes.data(), nullptr, l.bytes.size()};
    w.WalkRoot(r, l.entry->type, l.entry->annotations, l.entry->annot_arg);
  }
}

// The calling thread's live locals, appended to `out` as thread `thread`'s.
void SaveLocal(const LocalView &l, const char *name, int thread,
               std::vector<SavedLocal> *out) {
  const char *p = static_cast<const char *>(l.addr);
  out->emplace_back();
  SavedLocal &s = out->back();
  s.entry = l.entry;
  s.name = name;
  s.bytes.assign(p, p + l.size);
  s.thread = thread;
}

void SaveOwnLocals(int thread, std::vector<SavedLocal> *out) {
  for (int i = 0; i < LiveLocalCount(); ++i) {
    LocalView l = LiveLocalAt(i);
    SaveLocal(l, l.entry->key, thread, out);
  }
  for (int i = 0; i < NotedLocalCount(); ++i) {
    LocalView l = NotedLocalAt(i);
    SaveLocal(l, l.name, thread, out);
  }
}

} // namespace

void StageThreadLocals(int thread) {
  std::vector<SavedLocal> mine;
  SaveOwnLocals(thread, &mine);
  pthread_mutex_lock(&g_locals_lock);
  for (SavedLocal &l : mine)
    g_staged.push_back(std::move(l));
  pthread_mutex_unlock(&g_locals_lock);
}

void DropStagedLocals() {
  pthread_mutex_lock(&g_locals_lock);
  g_staged.clear();
  pthread_mutex_unlock(&g_locals_lock);
}

void SnapshotLocals(int from) {
  AbandonTransfer();
  g_plan = new Plan;
  g_plan->from = from;
  SaveOwnLocals(0, &g_plan->locals);
  pthread_mutex_lock(&g_locals_lock);
  for (SavedLocal &l : g_staged)
    g_plan->locals.push_back(std::move(l));
  g_staged.clear();
  pthread_mutex_unlock(&g_locals_lock);
}

const char *RegisteredFunctionKey(const void *fn) {
  for (int m = 0; m < ModuleCount(); ++m) {
    const struct mvedsua_module *mod = GetModule(m);
    for (uint64_t i = 0; i < mod->n_entries; ++i)
      if (mod->entries[i].kind == MVEDSUA_ENTRY_FUNCTION &&
          mod->entries[i].addr == fn)
        return mod->entries[i].key;
  }
  return nullptr;
}

int RemapOldPointer(void *old_ptr, void **out) {
  *out = old_ptr;
  if (!g_plan || !g_plan->walker || !old_ptr)
    return 0;
  return g_plan->walker->RemapFor(old_ptr, out);
}

int PlanTransfer(int from, int to, const char *to_name, std::string *reason) {
  Plan &plan = *g_plan;
  plan.from = from;
  plan.to = to;
  plan.xform = FindTransformer(to);
  if (plan.xform && CheckTransformer(plan.xform, from, to, to_name, reason) < 0) {
    *reason = "update refused: " + *reason;
    return -1;
  }
  std::vector<std::string> changed;
  MatchEntries(plan, &changed);
  MatchLocals(plan, &changed);
  if (!changed.empty()) {
    *reason = std::string("update refused: ") + to_name + " changes the type of " +
              JoinList(changed) +
              " and no state transformer was built into it; generate one with "
              "mvedsua-xfgen";
    return -1;
  }
  plan.walker = new Walker(to, to_name, plan);
  WalkOldState(plan, *plan.walker);
  if (!plan.walker->missing.empty()) {
    *reason = std::string("update refused: ") + to_name +
              " has no function with the key of " +
              JoinList(plan.walker->missing) +
              ", which the migrated state points to";
    return -1;
  }
  if (!plan.walker->unreadable.empty()) {
    *reason = std::string("update refused: the running version's state holds "
                          "pointers to memory that cannot be read: ") +
              JoinList(plan.walker->unreadable) +
              "; clear pointers to freed memory, or mark the field "
              "MVEDSUA_OPAQUE";
    return -1;
  }
  return 0;
}

Plan::~Plan() { delete walker; }

namespace {

void ApplyFixups(const Plan &plan, bool in_heap) {
  for (const Fixup &f : plan.fixups)
    if (f.in_heap == in_heap)
      *f.slot = f.value;
}

// Kitsune's hand-written transformers, each given the new variable (a local:
// each saved frame's new value, outermost first).
int RunHandXforms(Plan &plan, std::string *reason) {
  BeginHandXforms(plan.from, plan.to);
  for (const struct mvedsua_entry *e : plan.hand) {
    HandXformFn fn = HandXformFor(plan.to, *e);
    bool ok = true;
    if (e->kind != MVEDSUA_ENTRY_LOCAL) {
      ok = fn(e->addr) != 0;
    } else {
      for (uint64_t i = 0; ok; ++i) {
        void *out = SavedLocalNew(e->key, i);
        if (!out)
          break;
        SetHandLocalIndex(i);
        ok = fn(out) != 0;
      }
    }
    if (!ok) {
      EndHandXforms();
      *reason = "update failed: the hand-written transformer " +
                HandXformName(*e) + " of '" + e->key + "' returned false";
      return -1;
    }
  }
  EndHandXforms();
  return 0;
}

} // namespace

int CommitTransfer(TransferStats *stats, std::string *reason) {
  Plan &plan = *g_plan;
  for (const Copy &c : plan.copies) {
    memcpy(c.to->addr, c.from->addr, c.to->size);
    stats->entries++;
    stats->bytes += c.to->size;
  }
  ApplyFixups(plan, false); // the new version's objects and saved locals
  // Hand-written transformers write only new objects: when one fails, the
  // old version's state is untouched and no xfgen transformer has run yet.
  if (RunHandXforms(plan, reason) < 0)
    return -1;
  // The transformer runs before any shared (heap) slot is touched: when it
  // fails, the old version's state is exactly as it was.
  if (plan.xform) {
    TransformStats ts;
    if (RunTransformer(plan.xform, plan.from, plan.to, Walker::RemapNow,
                       plan.walker, &ts, reason) < 0) {
      *reason = "update failed: " + *reason;
      return -1;
    }
    stats->transformed = plan.transformed;
    stats->entries += plan.transformed;
  }
  ApplyFixups(plan, true);
  stats->remapped = plan.fixups.size();
  stats->visited = plan.visited;
  stats->locals = plan.locals.size();
  __atomic_store_n(&g_restoring_locals, 1, __ATOMIC_RELEASE);
  return 0;
}

void FinishTransfer() { AbandonTransfer(); }

void AbandonTransfer() {
  __atomic_store_n(&g_restoring_locals, 0, __ATOMIC_RELEASE);
  delete g_plan;
  g_plan = nullptr;
}

// The k-th frame of a function to enter receives the k-th saved copy of its
// local (outermost first), so recursion restores frame by frame.
bool RestoreLocal(const struct mvedsua_entry *e, void *addr) {
  if (!g_plan || !e || !e->key)
    return false;
  LocalsLock lock;
  for (SavedLocal &l : g_plan->locals) {
    if (l.thread != ThreadSlot())
      continue;
    if (l.to_entry) { // transformed: the new type's value, if it was written
      if (l.consumed || strcmp(l.to_entry->key, e->key) != 0 ||
          TypeHash(l.to_entry) != TypeHash(e) || l.to_entry->size != e->size)
        continue;
      l.consumed = true;
      if (!l.has_new)
        return false; // the transformer left it: the frame's own value
      memcpy(addr, l.transformed.data(), e->size);
      return true;
    }
    if (l.consumed || !l.entry || strcmp(l.entry->key, e->key) != 0 ||
        TypeHash(l.entry) != TypeHash(e) || l.bytes.size() != e->size)
      continue;
    memcpy(addr, l.bytes.data(), l.bytes.size());
    l.consumed = true;
    return true;
  }
  return false;
}

namespace {
SavedLocal *NthSaved(const char *key, uint64_t index) {
  if (!g_plan || !key)
    return nullptr;
  for (SavedLocal &l : g_plan->locals)
    if (l.entry && strcmp(l.entry->key, key) == 0 && index-- == 0)
      return &l;
  return nullptr;
}
} // namespace

void *SavedLocalOld(const char *key, uint64_t index) {
  SavedLocal *l = NthSaved(key, index);
  return l ? l->bytes.data() : nullptr;
}

void *SavedLocalNew(const char *key, uint64_t index) {
  SavedLocal *l = NthSaved(key, index);
  if (!l || !l->to_entry)
    return nullptr;
  if (!l->has_new) {
    l->transformed.assign(l->to_entry->size ? l->to_entry->size : 1, 0);
    l->has_new = true;
  }
  return l->transformed.data();
}

bool RestoreNotedLocal(const char *name, void *addr, unsigned long size) {
  if (!g_plan || !name)
    return false;
  LocalsLock lock;
  for (SavedLocal &l : g_plan->locals) {
    if (l.thread != ThreadSlot() || l.consumed || l.entry || strcmp(l.name, name) != 0 ||
        l.bytes.size() != size)
      continue;
    memcpy(addr, l.bytes.data(), size);
    l.consumed = true;
    return true;
  }
  return false;
}

} // namespace mvedsua
