// Registry.cpp: registration of the modules the plugin instruments, grouped
// into versions (one per loaded object), and lookup of versions.
//
// Registration happens in constructors, which the dynamic loader runs one at a
// time under its own lock, so the tables need no lock of their own. They are
// fixed-size .bss arrays: a constructor must not depend on malloc being usable.
#include "Runtime.h"

#include <dlfcn.h>
#include <string.h>

namespace mvedsua {
namespace {

Version g_versions[kMaxVersions];
int g_n_versions;
const struct mvedsua_module *g_modules[kMaxModules];
int g_module_version[kMaxModules];
int g_n_modules;

// The version for (path, base); a new one when this object was not seen.
int VersionFor(const char *path, const void *base) {
  for (int v = 0; v < g_n_versions; ++v)
    if (g_versions[v].base == base && strcmp(g_versions[v].path, path) == 0)
      return v;
  if (g_n_versions == kMaxVersions)
    return -1;
  Version &ver = g_versions[g_n_versions];
  snprintf(ver.path, sizeof ver.path, "%s", path);
  ver.base = base;
  return g_n_versions++;
}

// Records the first problem of a version; it is reported by the loader when a
// tool is loading the object, else right away (nobody else would).
void Reject(int v, const char *problem) {
  Version &ver = g_versions[v];
  if (ver.error[0] == '\0') {
    size_t n = strlen(ver.path);
    if (n > sizeof ver.error / 2)
      n = sizeof ver.error / 2;
    memcpy(ver.error, ver.path, n);
    snprintf(ver.error + n, sizeof ver.error - n, ": %s", problem);
  }
  if (GetStage() != kStageLoading)
    Report("error: %s: %s", ver.path, problem);
}

// False (and the version marked invalid) when the plugin that built the
// module speaks another registry format than this runtime.
bool Validate(int v, const struct mvedsua_module *m) {
  char problem[256];
  if (m->magic != MVEDSUA_REGISTRY_MAGIC) {
    snprintf(problem, sizeof problem,
             "bad mvedsua registry (magic 0x%08x, expected 0x%08x)", m->magic,
             MVEDSUA_REGISTRY_MAGIC);
  } else if (m->abi != MVEDSUA_REGISTRY_ABI) {
    snprintf(problem, sizeof problem,
             "module %s has mvedsua registry ABI %u but this runtime reads ABI "
             "%u (rebuild it with the matching MvedsuaPass.so)",
             m->source ? m->source : "?", m->abi, MVEDSUA_REGISTRY_ABI);
  } else {
    return true;
  }
  Reject(v, problem);
  return false;
}

} // namespace

int VersionCount() { return g_n_versions; }
const Version *GetVersion(int v) { return &g_versions[v]; }
int ModuleCount() { return g_n_modules; }
const struct mvedsua_module *GetModule(int m) { return g_modules[m]; }
int ModuleVersion(int m) { return g_module_version[m]; }

int FindVersionByPath(const char *path) {
  // The newest first: a path loaded again after an update is the newer one.
  for (int v = g_n_versions - 1; v >= 0; --v)
    if (strcmp(g_versions[v].path, path) == 0)
      return v;
  return -1;
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT void
__mvedsua_rt_register_module(const struct mvedsua_module *module) {
  EnsureInitialized();
  Dl_info info;
  if (!module || !dladdr(module, &info) || !info.dli_fname) {
    Report("error: a module registry at %p is not inside any loaded object",
           (const void *)module);
    return;
  }
  int v = VersionFor(info.dli_fname, info.dli_fbase);
  if (v < 0 || g_n_modules == kMaxModules) {
    Report("error: %s: too many versions or modules (limits %d and %d)",
           info.dli_fname, kMaxVersions, kMaxModules);
    return;
  }
  if (!Validate(v, module))
    return;
  g_modules[g_n_modules] = module;
  g_module_version[g_n_modules++] = v;
  g_versions[v].n_modules++;
}
