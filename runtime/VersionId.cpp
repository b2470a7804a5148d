// VersionId.cpp: the identity of a version's state layout.
//
// The id is a 64-bit FNV-1a hash over the version's migratable data entries
// (GLOBAL, STATIC, LOCAL_STATIC, LOCAL; not CONST, not FUNCTION) in (kind, key)
// order, each contributing its key bytes, one 0 byte, and the 8 bytes of its
// type's structural hash, least significant first (0 without a type). Two
// builds with the same state and the same types get the same id whatever the
// order of their modules or entries; docs/runtime.md documents it for tools.
#include "Runtime.h"

#include <algorithm>
#include <stdlib.h>
#include <string.h>

namespace mvedsua {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t Fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < n; ++i)
    h = (h ^ p[i]) * kFnvPrime;
  return h;
}

bool InId(const struct mvedsua_entry &e) {
  return e.kind <= MVEDSUA_ENTRY_LOCAL && !(e.flags & MVEDSUA_ENTRY_CONST);
}

uint64_t TypeHash(const struct mvedsua_entry *e) {
  return e->type ? e->type->hash : 0;
}

// (kind, key), then the type hash so equal keys still sort deterministically.
bool EntryLess(const struct mvedsua_entry *a, const struct mvedsua_entry *b) {
  if (a->kind != b->kind)
    return a->kind < b->kind;
  int c = strcmp(a->key ? a->key : "", b->key ? b->key : "");
  return c != 0 ? c < 0 : TypeHash(a) < TypeHash(b);
}

// The version's id entries, unsorted; *n receives their number.
const struct mvedsua_entry **CollectEntries(int v, size_t *n) {
  size_t total = 0;
  for (int m = 0; m < ModuleCount(); ++m)
    if (ModuleVersion(m) == v)
      total += GetModule(m)->n_entries;
  auto **list = static_cast<const struct mvedsua_entry **>(
      malloc((total ? total : 1) * sizeof(const struct mvedsua_entry *)));
  *n = 0;
  for (int m = 0; list && m < ModuleCount(); ++m) {
    if (ModuleVersion(m) != v)
      continue;
    const struct mvedsua_module *mod = GetModule(m);
    for (uint64_t i = 0; i < mod->n_entries; ++i)
      if (InId(mod->entries[i]))
        list[(*n)++] = &mod->entries[i];
  }
  return list;
}

} // namespace

uint64_t ComputeVersionId(int v) {
  size_t n;
  const struct mvedsua_entry **list = CollectEntries(v, &n);
  if (!list) {
    Report("error: %s: out of memory computing the version id",
           GetVersion(v)->path);
    return 0;
  }
  SortEntries(list, n);
  uint64_t h = kFnvOffset;
  for (size_t i = 0; i < n; ++i) {
    const char *key = list[i]->key ? list[i]->key : "";
    h = Fnv(h, key, strlen(key) + 1); // the key and its 0 byte
    unsigned char th[8];
    uint64_t t = TypeHash(list[i]);
    for (int b = 0; b < 8; ++b)
      th[b] = static_cast<unsigned char>(t >> (8 * b));
    h = Fnv(h, th, sizeof th);
  }
  free(list);
  return h;
}

void SortEntries(const struct mvedsua_entry **list, size_t n) {
  std::sort(list, list + n, EntryLess);
}

void FormatVersionId(uint64_t id, char out[17]) {
  snprintf(out, 17, "%016llx", static_cast<unsigned long long>(id));
}

} // namespace mvedsua
