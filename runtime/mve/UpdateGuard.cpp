// UpdateGuard.cpp: the updating follower's epoll_ctl on an inherited epoll
// instance fails the update (UpdateGuard.h).
#include "UpdateGuard.h"
#include "../Threads.h"
#include "Follower.h"
#include "Handover.h"
#include "Raw.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

namespace mvedsua {
namespace mve {

int g_update_guard;

namespace {

constexpr int kMaxGuarded = 256;
struct Inherited {
  int number; // the leader's number for it
  int copy;   // the follower's copy, above the program's numbers
};
Inherited g_inherited[kMaxGuarded];
int g_count;

bool IsEpoll(int fd) {
  char path[48], target[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  long n = RawSyscall(SYS_readlinkat, AT_FDCWD, long(path), long(target),
                      sizeof target - 1);
  if (n <= 0)
    return false;
  target[n] = '\0';
  return strcmp(target, "anon_inode:[eventpoll]") == 0;
}

void NoteIfEpoll(int fd) {
  if (g_count == kMaxGuarded || !IsEpoll(fd))
    return;
  long copy = RawSyscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
  g_inherited[g_count++] = {fd, copy >= 0 ? MoveFdHigh(int(copy)) : -1};
}

// Whether `epfd` names the same open file description as inherited entry i
// (so the same epoll instance, whatever number the program gave it since).
bool SameInstance(int epfd, const Inherited &in) {
  if (in.copy >= 0) {
    long pid = RawSyscall(SYS_getpid);
    long r = RawSyscall(SYS_kcmp, pid, pid, KCMP_FILE, epfd, in.copy);
    if (r >= 0)
      return r == 0;
  }
  // No kcmp (a kernel without it): the number it had at the fork decides.
  return epfd == in.number && IsEpoll(epfd);
}

const char *OpName(int op) {
  switch (op) {
  case EPOLL_CTL_ADD: return "EPOLL_CTL_ADD";
  case EPOLL_CTL_MOD: return "EPOLL_CTL_MOD";
  case EPOLL_CTL_DEL: return "EPOLL_CTL_DEL";
  default: return "?";
  }
}

} // namespace

void GuardInheritedEpolls() {
  g_count = 0;
  HandoverForEachProgramFd(NoteIfEpoll);
  __atomic_store_n(&g_update_guard, g_count > 0, __ATOMIC_RELEASE);
}

void GuardEnd() {
  __atomic_store_n(&g_update_guard, 0, __ATOMIC_RELEASE);
  for (int i = 0; i < g_count; ++i)
    if (g_inherited[i].copy >= 0)
      CloseRuntimeFd(g_inherited[i].copy);
  g_count = 0;
}

void GuardEpollCtl(int epfd, int op, int fd) {
  for (int i = 0; i < g_count; ++i) {
    if (!SameInstance(epfd, g_inherited[i]))
      continue;
    int k = ThreadSlot();
    char who[96];
    if (k > 0)
      snprintf(who, sizeof who, "thread %d (%s)", k, ThreadName(k));
    else
      snprintf(who, sizeof who, "the thread that runs main");
    char why[512];
    snprintf(why, sizeof why,
             "update failed: the new version called epoll_ctl(%d, %s, %d) "
             "while updating, in %s, on the epoll instance the follower "
             "shares with the leader (descriptor %d at the fork): the change "
             "would reach the leader's registrations too, so it was not made. "
             "The new version must keep an inherited event loop's "
             "registrations (docs/threads.md, \"Shared kernel objects\")",
             epfd, OpName(op), fd, who, g_inherited[i].number);
    FollowerFailUpdate(why);
  }
}

} // namespace mve
} // namespace mvedsua
