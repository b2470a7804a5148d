// Sched.cpp: the follower's threads' time slices (Sched.h).
#include "Sched.h"

#include "Raw.h"

#include <fcntl.h>
#include <linux/sched.h> // SCHED_FLAG_RESET_ON_FORK
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

namespace mvedsua {
namespace mve {

namespace {

// The kernel's struct sched_attr (sched_setattr(2)); glibc 2.36 has none.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

// Keeps the thread's policy and nice value (setting a lower nice value
// than it has would need a privilege); real-time threads are left alone.
void SetSlice(long tid, uint64_t ns) {
  SchedAttr a;
  memset(&a, 0, sizeof a);
  if (RawSyscall(SYS_sched_getattr, tid, long(&a), sizeof a, 0) != 0)
    return;
  if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH)
    return;
  if (a.sched_runtime == ns)
    return;
  a.size = sizeof a;
  a.sched_flags &= SCHED_FLAG_RESET_ON_FORK; // the program's own, kept
  a.sched_runtime = ns;
  RawSyscall(SYS_sched_setattr, tid, long(&a), 0);
}

long ParseTid(const char *s) {
  long n = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9')
      return -1;
    n = n * 10 + (*s - '0');
  }
  return n;
}

} // namespace

uint64_t FollowerSliceNs() {
  static int64_t ns = -1; // read once: the same in every thread
  if (ns < 0) {
    const char *s = getenv("MVEDSUA_MVE_FOLLOWER_SLICE_US");
    ns = int64_t((s && *s ? strtoull(s, nullptr, 10) : 100) * 1000);
  }
  return uint64_t(ns);
}

void SchedSetOwnSlice(uint64_t ns) { SetSlice(0, ns); }

void SchedSetProcessSlices(uint64_t ns) {
  long fd = RawSyscall(SYS_openat, AT_FDCWD, long("/proc/self/task"),
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  alignas(8) char buf[2048];
  long n;
  while ((n = RawSyscall(SYS_getdents64, fd, long(buf), sizeof buf)) > 0)
    for (long off = 0; off < n;) {
      struct Dirent {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = reinterpret_cast<Dirent *>(buf + off);
      long tid = ParseTid(d->name);
      if (tid > 0)
        SetSlice(tid, ns);
      off += d->reclen;
    }
  RawSyscall(SYS_close, fd);
}

} // namespace mve
} // namespace mvedsua
