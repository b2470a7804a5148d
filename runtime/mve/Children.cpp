// Children.cpp: followers for the children a leader forks (Children.h).
#include "Children.h"
#include "../Runtime.h"
#include "Follower.h"
#include "Log.h"
#include "Raw.h"
#include "Shim.h"
#include "Signals.h"
#include "Sud.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

namespace mvedsua {
namespace mve {

namespace {

constexpr int kMaxPairs = 32;
struct Pair {
  Log *log;          // leader: the child's log, mapped to watch its follower
  long pid;          // the child
  uint64_t announced; // records in this process's log with the fork's
};
Pair g_pairs[kMaxPairs]; // leader: its followed children
// Follower: announced logs, oldest first, each taken by the next replayed
// fork (the rules' look-ahead may read a later fork's announcement first).
constexpr int kAnnounced = 8;
int g_announced[kAnnounced];
int g_announced_head, g_announced_len;
long g_followers[kMaxPairs]; // follower: its children's followers, to reap
bool g_followed_child;       // leads the log of a followed child
int g_enabled = -1;          // MVEDSUA_MVE_FOLLOW_CHILDREN, read once

bool Enabled() { return EnvOn("MVEDSUA_MVE_FOLLOW_CHILDREN", &g_enabled); }

// A child inherits its parent's tables: none of those pairs is its own.
void ForgetInherited() {
  for (Pair &p : g_pairs)
    if (p.log) {
      LogDestroy(p.log);
      p = Pair();
    }
  for (long &f : g_followers)
    f = 0;
  g_announced_head = g_announced_len = 0;
}

uint64_t RecordsConsumed() {
  LogStats st;
  LogGetStats(ShimLog(), &st);
  return st.records_consumed;
}

// Pairs that are over: the child's follower ended (its report, if any, was
// looked at first), or never opened the log and never will (the update's
// follower is past the fork: the record after it is consumed, and the fork
// is replayed before that one is read).
void Sweep() {
  for (Pair &p : g_pairs) {
    if (!p.log)
      continue;
    bool over = LogReaderAttached(p.log)
                    ? LogReaderDone(p.log)
                    : ShimLog() && RecordsConsumed() > p.announced + 1;
    if (over) {
      LogAbandon(p.log); // a child that goes on records no more
      LogDestroy(p.log);
      p = Pair();
    }
  }
}

// The follower's child: follows `pid` on the log behind `memfd`.
void BecomeFollowerOf(long pid, long memfd, long pidfd, long parent) {
  RawSyscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (RawSyscall(SYS_getppid) != parent) // its parent was rolled back
    RawSyscall(SYS_exit_group, 0);
  ForgetUpdateInChild();
  ForgetInherited();
  char err[128];
  Log *log = LogOpen(int(memfd), err, sizeof err);
  if (log && LogTag(log) != uint64_t(pid)) { // not the child's (reused fd)
    LogDestroy(log);
    RawSyscall(SYS_exit_group, 0);
  }
  if (!log) {
    char line[256];
    int n = snprintf(line, sizeof line,
                     "mvedsua: the follower of child %ld cannot start: %s\n",
                     pid, err);
    RawWriteAll(2, line, uint64_t(n));
    RawSyscall(SYS_exit_group, 0);
  }
  ShimAdoptLog(log);
  ShimFollowChild(int(pid), pidfd >= 0 ? MoveFdHigh(int(pidfd)) : -1);
}

} // namespace

Log *ChildLogBeforeFork() {
  if (!Enabled() || ShimLaneCount() != 1)
    return nullptr;
  Sweep();
  Pair *free_pair = nullptr;
  for (Pair &p : g_pairs)
    if (!p.log) {
      free_pair = &p;
      break;
    }
  if (!free_pair)
    return nullptr; // as many sessions as that are followed already
  char err[128];
  Log *log = LogCreate(LogOptionsFromEnv(), err, sizeof err);
  if (!log)
    return nullptr;
  if (!ShimAppendControl(kCtlChildLog, 0, LogFd(log))) {
    LogDestroy(log);
    return nullptr;
  }
  return log;
}

void ChildForkedInParent(Log *log, long pid) {
  if (!log)
    return;
  if (pid <= 0) {
    LogDestroy(log);
    return;
  }
  // Tagged before the fork's record is published: the follower's child
  // checks it has this child's log.
  LogSetTag(log, uint64_t(pid));
  LogStats st;
  LogGetStats(ShimLog(), &st);
  for (Pair &p : g_pairs)
    if (!p.log) {
      p = {log, pid, st.records_appended};
      return;
    }
}

void ChildForkedInChild(Log *log) {
  g_followed_child = log != nullptr;
  for (Pair &p : g_pairs)
    if (p.log && p.log != log) {
      LogDestroy(p.log);
      p = Pair();
    }
  for (Pair &p : g_pairs)
    p = Pair();
  for (long &f : g_followers)
    f = 0;
  if (log)
    ShimAdoptLog(log);
}

void ChildNoteLog(int memfd_number) {
  if (g_announced_len == kAnnounced) // more forks read ahead than that
    return;
  g_announced[(g_announced_head + g_announced_len++) % kAnnounced] =
      memfd_number;
}

bool ChildFollowerFork(const long a[6], long pid, long leader) {
  if (!g_announced_len)
    return false; // not followed
  int n = g_announced[g_announced_head];
  g_announced_head = (g_announced_head + 1) % kAnnounced;
  g_announced_len--;
  if (pid <= 0)
    return false;
  char path[48];
  snprintf(path, sizeof path, "/proc/%ld/fd/%d", leader, n);
  long memfd = RawSyscall(SYS_openat, AT_FDCWD, long(path), O_RDWR | O_CLOEXEC);
  if (memfd < 0)
    return false; // the leader is gone: there is nothing to follow
  long pidfd = RawSyscall(SYS_pidfd_open, pid, 0);
  // A follower cloned under the supervisor (the leader's sibling) clones
  // the child's follower there too: its program, once promoted, reaps its
  // own children with waitpid(-1) and must not find this one.
  long parent = RawSyscall(SYS_getppid);
  long flags = a[0];
  if (parent != leader)
    flags |= CLONE_PARENT;
  else
    parent = RawSyscall(SYS_getpid);
  long r = RawSyscall(SYS_clone, flags, a[1], a[2], a[3], a[4]);
  if (r == 0) {
    BecomeFollowerOf(pid, memfd, pidfd, parent);
    return true;
  }
  RawSyscall(SYS_close, memfd);
  if (pidfd >= 0)
    RawSyscall(SYS_close, pidfd);
  for (long &f : g_followers)
    if (r > 0 && !f) {
      f = r;
      break;
    }
  return false;
}

void ChildReap() {
  for (long &f : g_followers) {
    int st;
    if (f > 0 && RawSyscall(SYS_wait4, f, long(&st), WNOHANG | __WALL, 0) != 0)
      f = 0; // reaped, or not ours to reap any more
  }
}

bool ChildDiverged(char *out, size_t size) {
  for (Pair &p : g_pairs) {
    if (!p.log)
      continue;
    auto *r = static_cast<const DivergenceReport *>(LogUserArea(p.log));
    if (__atomic_load_n(&r->kind, __ATOMIC_ACQUIRE) != kDivNone) {
      snprintf(out, size, "the follower of child %ld diverged: %s", p.pid,
               r->text);
      return true;
    }
    char crash[1536];
    if (FollowerCrashed(p.log, crash, sizeof crash)) {
      snprintf(out, size, "the follower of child %ld crashed: %s", p.pid,
               crash);
      return true;
    }
  }
  Sweep();
  return false;
}

void ChildPassUp(bool exiting) {
  if (!g_followed_child || !ShimLog())
    return;
  auto *own = static_cast<DivergenceReport *>(LogUserArea(ShimLog()));
  if (__atomic_load_n(&own->kind, __ATOMIC_ACQUIRE) != kDivNone)
    return; // its own follower diverged, or passed up already
  // At the end: the grandchildren's followers may still be replaying.
  for (int waited = 0; exiting && waited < 1000 && ChildPairsFollowed();
       waited += 5) {
    char unused[8];
    if (ChildDiverged(unused, sizeof unused))
      break;
    struct timespec ts = {0, 5 * 1000 * 1000};
    RawSyscall(SYS_nanosleep, long(&ts), 0);
  }
  char text[sizeof own->text];
  if (!ChildDiverged(text, sizeof text))
    return;
  memset(own, 0, sizeof *own);
  own->leader_nr = own->follower_nr = -1;
  snprintf(own->text, sizeof own->text, "%s", text);
  __atomic_store_n(&own->kind, uint32_t(kDivRule), __ATOMIC_RELEASE);
}

void ChildPairsEnd() {
  for (Pair &p : g_pairs)
    if (p.log) {
      // Abandoned: the child stops recording at its next call and its
      // follower, if still there, ends without a report.
      LogAbandon(p.log);
      LogDestroy(p.log);
      p = Pair();
    }
}

int ChildPairsFollowed() {
  int n = 0;
  for (const Pair &p : g_pairs)
    n += p.log != nullptr;
  return n;
}

} // namespace mve
} // namespace mvedsua
