// Loader.cpp: loading a version (a shared object built with the plugin) and
// running its main, for mvedsua-run. Every failure is one line naming the
// object, written to the caller's buffer.
#include "Runtime.h"
#include "ToolApi.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mvedsua {
namespace {

struct Error {
  char *buf;
  size_t size;
  int Set(const char *fmt, const char *path, const char *detail = "") {
    snprintf(buf, size, fmt, path, detail);
    return -1;
  }
};

const char *ElfTypeName(unsigned type) {
  switch (type) {
  case ET_REL: return "a relocatable object (.o), link it with -shared";
  case ET_EXEC: return "an executable, build it with -fPIC -shared";
  case ET_CORE: return "a core file";
  default: return "an ELF file of unknown type";
  }
}

// Refuses what dlopen would reject with a less helpful message.
int CheckObjectFile(const char *path, Error &err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err.Set("cannot open %s: %s", path, strerror(errno));
  struct stat st;
  Elf64_Ehdr eh;
  ssize_t n = -1;
  if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
    n = read(fd, &eh, sizeof eh);
  close(fd);
  if (S_ISDIR(st.st_mode))
    return err.Set("%s is a directory, not a shared object", path);
  if (n < SELFMAG || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return err.Set("%s is not an ELF shared object", path);
  if (n == sizeof eh && eh.e_type != ET_DYN)
    return err.Set("%s is not a shared object: it is %s", path,
                   ElfTypeName(eh.e_type));
  return 0;
}

// dlopen searches the library path for a name without '/': make it a path.
void *OpenObject(const char *path) {
  if (strchr(path, '/'))
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
  char local[kMaxPath];
  snprintf(local, sizeof local, "./%s", path);
  return dlopen(local, RTLD_NOW | RTLD_LOCAL);
}

// The object's own main: dlsym also searches its dependencies.
int FindMain(void *handle, const char *path, const char *loaded_name,
             mvedsua_rt_main_fn *main, Error &err) {
  void *sym = dlsym(handle, "main");
  Dl_info info;
  if (!sym)
    return err.Set("%s has no main function (a version must define "
                   "'int main(int argc, char **argv)')",
                   path);
  if (!dladdr(sym, &info) || !info.dli_fname ||
      strcmp(info.dli_fname, loaded_name) != 0)
    return err.Set("%s does not define main (the one found is in %s)", path,
                   info.dli_fname ? info.dli_fname : "another object");
  *main = reinterpret_cast<mvedsua_rt_main_fn>(sym);
  return 0;
}

} // namespace

// `open_path` is what dlopen gets (a private copy's /proc/self/fd/N for an
// update to an object already loaded); messages name `path`.
int LoadVersionAt(const char *path, const char *open_path,
                  struct mvedsua_rt_loaded *out, char *err_buf,
                  size_t err_size) {
  EnsureInitialized();
  Error err{err_buf, err_size};
  if (CheckObjectFile(path, err) < 0)
    return -1;
  Stage before = GetStage();
  SetStage(kStageLoading);
  void *handle = OpenObject(open_path);
  SetStage(before);
  if (!handle)
    return err.Set("cannot load %s: %s", path, dlerror());
  struct link_map *map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map)
    return err.Set("cannot inspect %s: %s", path, dlerror());
  out->handle = handle;
  if (FindMain(handle, path, map->l_name, &out->main, err) < 0)
    return -1;
  out->version = FindVersionByPath(map->l_name);
  if (out->version >= 0 && GetVersion(out->version)->error[0])
    return err.Set("%s", GetVersion(out->version)->error);
  return 0;
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT int mvedsua_rt_load_version(const char *path,
                                           struct mvedsua_rt_loaded *out,
                                           char *err_buf, size_t err_size) {
  return LoadVersionAt(path, path, out, err_buf, err_size);
}

MVEDSUA_EXPORT int mvedsua_rt_run_main(const struct mvedsua_rt_loaded *v,
                                       int argc, char **argv) {
  struct link_map *map = nullptr;
  if (dlinfo(v->handle, RTLD_DI_LINKMAP, &map) == 0 && map)
    AnnounceVersion(v->version, map->l_name);
  SetStage(kStageRunning);
  // Returns when the main of the last version an update migrated to returns.
  return RunVersions(v->version, v->main, argc, argv);
}

MVEDSUA_EXPORT void mvedsua_rt_version_id(int version, char out[17]) {
  FormatVersionId(ComputeVersionId(version), out);
}

MVEDSUA_EXPORT void mvedsua_rt_dump_state(int version, FILE *out, int json) {
  if (json)
    DumpVersionJson(version, out);
  else
    DumpVersionText(version, out);
}
