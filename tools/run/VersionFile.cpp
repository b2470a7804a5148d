// VersionFile.cpp: checking a version file before an update uses it.
#include "VersionFile.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

// A plugin-built version registers its modules from a constructor.
const char kRegistrationSymbol[] = "__mvedsua_rt_register_module";

std::string Octal(unsigned mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%03o", mode & 0777);
  return buf;
}

// Who may replace the code the service will run: the file's owner and
// whoever may write it. Only the supervisor's uid and root are trusted.
bool CheckOwnership(const std::string &path, const struct stat &st,
                    std::string *err) {
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    *err = "version file " + path + " is writable by others (mode " +
           Octal(st.st_mode) + "): allow only its owner to write it (chmod go-w)";
    return false;
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    *err = "version file " + path + " is owned by uid " +
           std::to_string(st.st_uid) + ", not by this service's uid " +
           std::to_string(geteuid()) + " or root";
    return false;
  }
  return true;
}

// The dynamic symbol table of a mapped ELF64 shared object names `symbol`.
bool HasDynamicSymbol(const char *map, size_t size, const char *symbol) {
  const Elf64_Ehdr *eh = reinterpret_cast<const Elf64_Ehdr *>(map);
  if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
      eh->e_shoff + uint64_t(eh->e_shnum) * sizeof(Elf64_Shdr) > size)
    return false;
  const Elf64_Shdr *sh = reinterpret_cast<const Elf64_Shdr *>(map + eh->e_shoff);
  for (unsigned i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
      continue;
    const Elf64_Shdr &strtab = sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > size ||
        strtab.sh_offset + strtab.sh_size > size)
      return false;
    const Elf64_Sym *syms = reinterpret_cast<const Elf64_Sym *>(map + sh[i].sh_offset);
    for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k)
      if (syms[k].st_name < strtab.sh_size &&
          strncmp(map + strtab.sh_offset + syms[k].st_name, symbol,
                  strtab.sh_size - syms[k].st_name) == 0)
        return true;
  }
  return false;
}

// An ELF64 shared object built with the plugin.
bool CheckObject(const std::string &path, int fd, size_t size, std::string *err) {
  void *map = size >= sizeof(Elf64_Ehdr)
                  ? mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0)
                  : MAP_FAILED;
  const Elf64_Ehdr *eh = static_cast<const Elf64_Ehdr *>(map);
  bool ok = false;
  if (map == MAP_FAILED || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64)
    *err = path + " is not an ELF shared object";
  else if (eh->e_type != ET_DYN)
    *err = path + " is not a shared object (ELF type " +
           std::to_string(eh->e_type) + "; link it with -shared)";
  else if (!HasDynamicSymbol(static_cast<const char *>(map), size,
                             kRegistrationSymbol))
    *err = path + " has no mvedsua registry (built without MvedsuaPass.so?)";
  else
    ok = true;
  if (map != MAP_FAILED)
    munmap(map, size);
  return ok;
}

} // namespace

std::string CheckVersionFile(const std::string &path, std::string *err) {
  if (path.empty() || path[0] != '/') {
    *err = "version file '" + path + "' is not an absolute path";
    return "";
  }
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) {
    *err = "version file " + path + ": " + strerror(errno);
    return "";
  }
  int fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    *err = "version file " + path + ": " + strerror(errno);
    if (fd >= 0)
      close(fd);
    return "";
  }
  bool ok = false;
  if (!S_ISREG(st.st_mode))
    *err = "version file " + path + " is not a regular file";
  else
    ok = CheckOwnership(path, st, err) &&
         CheckObject(path, fd, size_t(st.st_size), err);
  close(fd);
  return ok ? std::string(resolved) : "";
}
