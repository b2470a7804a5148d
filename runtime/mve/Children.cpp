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

constexpr int kMaxPairs = kMaxLanes; // a fork per thread at once, at least
struct Pair {
  Log *log;          // leader: the child's log, mapped to watch its follower
  long pid;          // the child
  Log *lane;         // the log of the thread that forked it, which has
  uint64_t announced; // ... this many records with the fork's
};
// Leader: its followed children. Threads fork and look at their followers
// at once: the table is taken under g_pairs_lock (a spin lock; a fatal
// signal's handler only tries it).
Pair g_pairs[kMaxPairs];
int g_pairs_lock;
// Follower: per lane, the announced logs, oldest first, each taken by the
// next fork that thread replays (the rules' look-ahead may read a later
// fork's announcement first).
constexpr int kAnnounced = 8;
struct Announced {
  int memfd[kAnnounced];
  int head, len;
};
Announced g_announced[kMaxLanes];
long g_followers[kMaxPairs]; // follower: its children's followers, to reap

void LockPairs() {
  while (__atomic_exchange_n(&g_pairs_lock, 1, __ATOMIC_ACQUIRE))
    RawSyscall(SYS_sched_yield);
}
bool TryLockPairs() { return !__atomic_exchange_n(&g_pairs_lock, 1, __ATOMIC_ACQUIRE); }
void UnlockPairs() { __atomic_store_n(&g_pairs_lock, 0, __ATOMIC_RELEASE); }

Announced &OwnAnnounced() {
  int lane = ShimLane();
  return g_announced[lane > 0 && lane < kMaxLanes ? lane : 0];
}
bool g_followed_child;       // leads the log of a followed child
int g_enabled = -1;          // MVEDSUA_MVE_FOLLOW_CHILDREN, read once

bool Enabled() { return EnvOn("MVEDSUA_MVE_FOLLOW_CHILDREN", &g_enabled); }

// The children of a leader with several threads too, unless
// MVEDSUA_MVE_FOLLOW_THREADED_CHILDREN=0 (docs/mve.md "Children").
int g_threaded = -1;
bool ThreadedEnabled() {
  return EnvOn("MVEDSUA_MVE_FOLLOW_THREADED_CHILDREN", &g_threaded);
}

// A child inherits its parent's tables: none of those pairs is its own.
void ForgetInherited() {
  for (Pair &p : g_pairs)
    if (p.log) {
      LogDestroy(p.log);
      p = Pair();
    }
  for (long &f : g_followers)
    f = 0;
  for (Announced &a : g_announced)
    a.head = a.len = 0;
  g_pairs_lock = 0; // held by another thread at the fork, maybe
}

uint64_t Stat(Log *log, uint64_t LogStats::*field) {
  LogStats st;
  LogGetStats(log, &st);
  return st.*field;
}

// Under g_pairs_lock: pairs that are over: the child's follower ended (its
// report, if any, was looked at first), or never opened the log and never
// will (the update's follower thread is past the fork: the record after it
// is consumed, and the fork is replayed before that one is read).
void Sweep() {
  for (Pair &p : g_pairs) {
    if (!p.log)
      continue;
    bool over = LogReaderAttached(p.log)
                    ? LogReaderDone(p.log)
                    : p.lane && Stat(p.lane, &LogStats::records_consumed) >
                                    p.announced + 1;
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
  if (!Enabled() || !ShimThreadLog() ||
      (ShimLaneCount() > 1 && !ThreadedEnabled()))
    return nullptr;
  LockPairs();
  Sweep();
  int free_pairs = 0;
  for (Pair &p : g_pairs)
    free_pairs += !p.log;
  UnlockPairs();
  // Each thread may be between here and ChildForkedInParent at once.
  if (free_pairs < ShimLaneCount())
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
  Log *lane = ShimThreadLog();
  uint64_t appended = Stat(lane, &LogStats::records_appended);
  LockPairs();
  Pair *free_pair = nullptr;
  for (Pair &p : g_pairs)
    if (!p.log && !free_pair)
      free_pair = &p;
  if (free_pair)
    *free_pair = {log, pid, lane, appended};
  UnlockPairs();
  if (!free_pair) // other threads' forks took them meanwhile: not followed
    LogDestroy(log);
}

void ChildForkedInChild(Log *log) {
  g_followed_child = log != nullptr;
  g_pairs_lock = 0; // another thread may have held it at the fork
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
  Announced &a = OwnAnnounced();
  if (a.len == kAnnounced) // more forks read ahead than that
    return;
  a.memfd[(a.head + a.len++) % kAnnounced] = memfd_number;
}

bool ChildFollowerFork(const long a[6], long pid, long leader) {
  Announced &own = OwnAnnounced();
  if (!own.len)
    return false; // not followed
  int n = own.memfd[own.head];
  own.head = (own.head + 1) % kAnnounced;
  own.len--;
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
  for (long &f : g_followers) { // threads replay forks and waits at once
    long none = 0;
    if (r > 0 && __atomic_compare_exchange_n(&f, &none, r, false,
                                             __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      break;
  }
  return false;
}

void ChildReap() {
  for (long &f : g_followers) {
    int st;
    long pid = __atomic_load_n(&f, __ATOMIC_ACQUIRE);
    if (pid > 0 && RawSyscall(SYS_wait4, pid, long(&st), WNOHANG | __WALL, 0) != 0)
      __atomic_compare_exchange_n(&f, &pid, 0, false, __ATOMIC_ACQ_REL,
                                  __ATOMIC_RELAXED); // reaped, or not ours
  }
}

// Under g_pairs_lock.
bool PairDiverged(char *out, size_t size) {
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

bool ChildDiverged(char *out, size_t size) {
  if (!TryLockPairs())
    return false; // another thread forks or looks: the next look sees it
  bool diverged = PairDiverged(out, size);
  UnlockPairs();
  return diverged;
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
  LockPairs();
  for (Pair &p : g_pairs)
    if (p.log) {
      // Abandoned: the child stops recording at its next call and its
      // follower, if still there, ends without a report.
      LogAbandon(p.log);
      LogDestroy(p.log);
      p = Pair();
    }
  UnlockPairs();
}

int ChildPairsFollowed() {
  int n = 0;
  for (const Pair &p : g_pairs)
    n += p.log != nullptr;
  return n;
}

} // namespace mve
} // namespace mvedsua
