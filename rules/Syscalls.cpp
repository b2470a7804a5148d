// Syscalls.cpp: the schema's calls (runtime/mve/Schema.def) by name, for the
// checker and the compiler: a rule can only name a call the follower
// compares, with the schema's arity and argument kinds.
#include "../runtime/mve/Schema.h"
#include "Rules.h"

#include <algorithm>
#include <string.h>
#include <vector>
#include <sys/syscall.h>

namespace mvedsua {
namespace rules {
namespace {

using mve::ArgKind;

struct A {
  ArgKind kind;
  unsigned char arg;
};
constexpr A X = {mve::kX, 0}, S = {mve::kS, 0}, P = {mve::kP, 0},
            STR = {mve::kStr, 0}, LENPTR = {mve::kLenPtr, 0},
            MSGIN = {mve::kMsgIn, 0}, MSGOUT = {mve::kMsgOut, 0},
            EPEVIN = {mve::kEpevIn, 0}, EPEVOUT = {mve::kEpevOut, 0},
            FCNTLARG = {mve::kFcntlArg, 0}, IOCTLARG = {mve::kIoctlArg, 0};
constexpr A IN(int n) { return {mve::kIn, (unsigned char)n}; }
constexpr A INF(int) { return {mve::kInF, 0}; }
constexpr A OUTR(int n) { return {mve::kOutR, (unsigned char)n}; }
constexpr A OUTF(int) { return {mve::kOutF, 0}; }
constexpr A INOUTF(int) { return {mve::kInOutF, 0}; }
constexpr A LENBUF(int n) { return {mve::kLenBuf, (unsigned char)n}; }
constexpr A IOVIN(int n) { return {mve::kIovIn, (unsigned char)n}; }
constexpr A IOVOUT(int n) { return {mve::kIovOut, (unsigned char)n}; }
constexpr A POLLFD(int n) { return {mve::kPollFd, (unsigned char)n}; }
constexpr A FDSET(int n) { return {mve::kFdSet, (unsigned char)n}; }

struct Row {
  const char *name;
  long nr;
  A args[6];
};

const Row kRows[] = {
#define MVE_SYSCALL(name, cls, a0, a1, a2, a3, a4, a5)                        \
  {#name, SYS_##name, {a0, a1, a2, a3, a4, a5}},
#include "../runtime/mve/Schema.def"
#undef MVE_SYSCALL
};

constexpr size_t kCount = sizeof kRows / sizeof kRows[0];

struct Table {
  SyscallInfo info[kCount];
  Table() {
    for (size_t i = 0; i < kCount; ++i) {
      SyscallInfo &s = info[i];
      s.name = kRows[i].name;
      s.nr = kRows[i].nr;
      s.arity = 0;
      for (int j = 0; j < 6; ++j) {
        s.kinds[j] = kRows[i].args[j].kind;
        s.len_arg[j] = kRows[i].args[j].arg;
        if (s.kinds[j] != mve::kX)
          s.arity = j + 1;
      }
    }
  }
};
const Table g_table;

size_t Distance(const std::string &a, const std::string &b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (a[i - 1] != b[j - 1])});
    prev.swap(cur);
  }
  return prev[b.size()];
}

} // namespace

const SyscallInfo *FindSyscall(const std::string &name) {
  for (const SyscallInfo &s : g_table.info)
    if (name == s.name)
      return &s;
  return nullptr;
}

const SyscallInfo *SyscallByNr(long nr) {
  for (const SyscallInfo &s : g_table.info)
    if (s.nr == nr)
      return &s;
  return nullptr;
}

// The shim records what glibc asks the kernel for: open is openat(AT_FDCWD,
// ...), recv and send are recvfrom and sendto with no address.
bool FindAlias(const std::string &name, std::string &target, int map[6],
               int &arity) {
  for (int i = 0; i < 6; ++i)
    map[i] = -1;
  if (name == "open") {
    target = "openat";
    map[0] = 1, map[1] = 2, map[2] = 3;
    arity = 3;
    return true;
  }
  if (name == "recv" || name == "send") {
    target = name == "recv" ? "recvfrom" : "sendto";
    map[0] = 0, map[1] = 1, map[2] = 2, map[3] = 3;
    arity = 4;
    return true;
  }
  return false;
}

std::string ClosestSyscall(const std::string &name) {
  std::string best;
  size_t best_d = 3; // suggest only near misses
  for (const SyscallInfo &s : g_table.info) {
    size_t d = Distance(name, s.name);
    if (d < best_d) {
      best_d = d;
      best = s.name;
    }
  }
  return best;
}

} // namespace rules
} // namespace mvedsua
