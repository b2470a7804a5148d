// Signals.cpp: asynchronous signals at record boundaries (Signals.h,
// docs/mve.md "Signals").
//
// State, per process:
//   g_prog[sig]    the program's action for every signal the runtime may
//                  defer, as the kernel would hold it (restorer rewritten
//                  for SUD), saved when deferral starts and kept up to date
//                  by the trapped rt_sigaction
//   g_deferred     the signals whose action is a handler: the kernel holds
//                  the runtime's OnSignal for them instead
//   g_shared       signals sent to the process, noted by OnSignal on
//                  whichever thread the kernel chose, with g_info[sig] (a
//                  standard signal: one at a time, like the kernel's) or in
//                  g_rt (real-time signals queue, like the kernel's), until
//                  a thread delivers them at one of its record boundaries
// and per thread of the program (its lane; lane 0 for a process without
// lanes), g_threads[lane]: the signals sent to that thread alone (tgkill,
// pthread_kill), which only it delivers, and in a follower the signals the
// leader's thread delivered in that lane, not run yet. g_sig_pending is the
// union of every pending set, the shim's one-load check before each call.
// OnSignal runs with every deferrable signal blocked (its sa_mask), so it
// never interrupts itself; a thread takes a pending signal with the same
// signals blocked (one rt_sigprocmask, which also reads the program's mask)
// and under g_lock, a spin lock no thread holds with the signals unblocked
// (so a handler never spins on a lock its own thread holds).
#include "Signals.h"
#include "../Runtime.h"
#include "../ToolApi.h"
#include "Raw.h"
#include "Shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <initializer_list>

namespace mvedsua {
namespace mve {

uint64_t g_sig_pending;
uint64_t g_sig_deliveries;

namespace {

enum Role : int { kNone = 0, kLeading, kFollowing };

bool g_active;        // the runtime's handlers are in
int g_role;           // read by OnSignal
uint64_t g_kept;      // signals whose table is kept (deferrable ones)
uint64_t g_deferred;  // kept signals with a program handler
KSigaction g_prog[65];
siginfo_t g_info[65];
uint64_t Bit(int sig) { return 1ull << (sig - 1); }

// Real-time signals noted, oldest first (each its own siginfo: a timer's
// si_value, a sigqueue's value). Full: the newest are dropped.
constexpr int kRtQueue = 32;
siginfo_t g_rt[kRtQueue];
int g_rt_len;
uint64_t g_shared;
int g_lock;
int g_partner;        // follower: whom it follows
int g_parent;         // follower: its parent (the supervisor, when cloned)
int g_enabled = -1;   // MVEDSUA_MVE_SIGNALS, read once

// Follower: records read, handlers not run yet.
struct Recorded {
  int sig;
  siginfo_t info;
};
constexpr int kQueue = 16;
constexpr int kDirected = 128;
struct ThreadSigs {
  uint64_t pending; // leader: signals sent to this thread, in q
  int tid;          // ... the thread's id, to queue them again at the end
  int len;
  siginfo_t q[kDirected]; // oldest first; full: the newest are dropped
  Recorded queue[kQueue]; // follower: delivered in this lane, to run
  int queue_head, queue_len;
};
ThreadSigs g_threads[kMaxLanes];

ThreadSigs &Own() {
  int lane = ShimLane();
  return g_threads[lane > 0 && lane < kMaxLanes ? lane : 0];
}

void Lock() {
  while (__atomic_exchange_n(&g_lock, 1, __ATOMIC_ACQUIRE))
    __builtin_ia32_pause();
}
void Unlock() { __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE); }

// Under g_lock: the union the shim looks at.
void Summarize() {
  uint64_t all = g_shared;
  for (const ThreadSigs &t : g_threads)
    all |= t.pending;
  __atomic_store_n(&g_sig_pending, all, __ATOMIC_RELEASE);
}

// Every table emptied.
void ClearTables() {
  g_shared = 0;
  g_rt_len = 0;
  for (ThreadSigs &t : g_threads)
    t.pending = 0, t.len = 0, t.queue_head = t.queue_len = 0;
  __atomic_store_n(&g_sig_pending, 0, __ATOMIC_RELAXED);
}

// A fork's child has one thread: g_lock may have been held by another at
// the fork.
void ClearAll() {
  g_lock = 0;
  ClearTables();
}

// A noted signal given back to the kernel, for the program's own handler
// (a process may queue any siginfo to itself).
void Requeue(long pid, long tid, int sig, siginfo_t info) {
  if (!(g_deferred & Bit(sig)))
    return;
  info.si_signo = sig;
  RawSyscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, long(&info));
}

bool IsHandler(const KSigaction &a) {
  return a.handler != SIG_DFL && a.handler != SIG_IGN;
}

bool Enabled() { return EnvOn("MVEDSUA_MVE_SIGNALS", &g_enabled); }

// Every signal but the runtime's own: SIGKILL/SIGSTOP, SUD's SIGSYS, glibc's
// two below SIGRTMIN, the supervisor's wake signal, and the fatal signals
// (never deferred: the crash reports and takeovers need them at once).
uint64_t Deferrable() {
  uint64_t set = 0;
  for (int sig = 1; sig <= 64; ++sig)
    set |= Bit(sig);
  for (int sig : {SIGKILL, SIGSTOP, SIGSYS, int(MVEDSUA_WAKE_SIGNAL),
                  MVEDSUA_FATAL_SIGNALS})
    set &= ~Bit(sig);
  for (int sig = 32; sig < SIGRTMIN; ++sig)
    set &= ~Bit(sig);
  return set;
}

long SetMask(int how, uint64_t set, uint64_t *old) {
  return RawSyscall(SYS_rt_sigprocmask, how, long(&set), long(old), 8);
}

// A signal sent to one thread (tgkill, pthread_kill: the kernel runs
// OnSignal on that thread) into its table; standard ones once, like the
// kernel's.
void NoteDirected(int sig, const siginfo_t *si) {
  ThreadSigs &t = Own();
  if ((sig < 32 && (t.pending & Bit(sig))) || t.len == kDirected)
    return;
  t.tid = int(RawSyscall(SYS_gettid));
  t.q[t.len] = *si;
  t.q[t.len++].si_signo = sig;
  t.pending |= Bit(sig);
}

void NoteShared(int sig, const siginfo_t *si) {
  if (sig >= 32) {
    if (g_rt_len == kRtQueue)
      return;
    g_rt[g_rt_len] = *si;
    g_rt[g_rt_len++].si_signo = sig;
  } else if (g_shared & Bit(sig)) {
    return; // not queued, like the kernel's standard signals
  } else {
    g_info[sig] = *si;
  }
  g_shared |= Bit(sig);
}

void Note(int sig, const siginfo_t *si) {
  Lock();
  if (si->si_code == SI_TKILL)
    NoteDirected(sig, si);
  else
    NoteShared(sig, si);
  Summarize();
  Unlock();
}

// The oldest entry for `sig` of a queue of siginfos into *out (removed);
// whether one was found, and in *more whether another is left.
bool TakeFrom(siginfo_t *q, int *len, int sig, siginfo_t *out, bool *more) {
  bool found = false;
  *more = false;
  for (int i = 0; i < *len; ++i) {
    if (q[i].si_signo != sig)
      continue;
    if (found) {
      *more = true;
      break;
    }
    *out = q[i];
    memmove(&q[i], &q[i + 1], sizeof *q * size_t(*len - i - 1));
    (*len)--;
    found = true;
    --i;
  }
  return found;
}

// With the deferrable signals blocked, under g_lock: the oldest noted
// instance of `sig` for this thread into *out (sent to it first, then to
// the process). False if none.
bool Take(int sig, siginfo_t *out) {
  ThreadSigs &t = Own();
  bool more = false, found = false;
  if (t.pending & Bit(sig)) {
    found = TakeFrom(t.q, &t.len, sig, out, &more);
    if (!more)
      t.pending &= ~Bit(sig);
  } else if (sig < 32 && (g_shared & Bit(sig))) {
    *out = g_info[sig];
    g_shared &= ~Bit(sig);
    found = true;
  } else if (g_shared & Bit(sig)) {
    found = TakeFrom(g_rt, &g_rt_len, sig, out, &more);
    if (!more)
      g_shared &= ~Bit(sig);
  }
  Summarize();
  return found;
}

// With the deferrable signals blocked: every noted instance of `sig`
// dropped (its handler is gone).
void Drop(int sig) {
  Lock();
  siginfo_t info;
  bool more;
  while (TakeFrom(g_rt, &g_rt_len, sig, &info, &more)) {
  }
  g_shared &= ~Bit(sig);
  for (ThreadSigs &t : g_threads) {
    while (TakeFrom(t.q, &t.len, sig, &info, &more)) {
    }
    t.pending &= ~Bit(sig);
  }
  Summarize();
  Unlock();
}

// The runtime's handler: notes, never runs the program's.
void OnSignal(int sig, siginfo_t *si, void *) {
  if (__atomic_load_n(&g_role, __ATOMIC_RELAXED) != kFollowing)
    return Note(sig, si);
  // A follower acts on records only. A signal its partner sent (a leader
  // passing on what reached it at a promotion) is kept for when this
  // process leads; one the supervisor sent (to the old leader at a
  // promotion, before it learnt who leads) goes to the leader.
  if (si->si_code == SI_USER && si->si_pid == g_partner)
    return Note(sig, si);
  if (si->si_code == SI_USER && g_parent > 1 && si->si_pid == g_parent &&
      g_parent != g_partner)
    RawSyscall(SYS_kill, g_partner, sig);
}

KSigaction Ours() {
  KSigaction sa = {};
  sa.handler = reinterpret_cast<void *>(OnSignal);
  // No SA_RESTART in a leader: a blocking call returns EINTR and the shim
  // delivers at once. A follower's calls are not interrupted for nothing.
  sa.flags = SA_SIGINFO | kSaRestorer |
             (g_role == kFollowing ? SA_RESTART : 0);
  sa.restorer = reinterpret_cast<void *>(mvedsua_mve_restore_rt);
  sa.mask = g_kept;
  return sa;
}

void InstallOurs() {
  KSigaction sa = Ours();
  for (int sig = 1; sig <= 64; ++sig)
    if (g_deferred & Bit(sig))
      RawSyscall(SYS_rt_sigaction, sig, long(&sa), 0, 8);
}

void Start(int role) {
  if (!Enabled())
    return;
  uint64_t old;
  if (g_active) {
    if (g_role == role)
      return;
    SetMask(SIG_BLOCK, g_kept, &old);
    __atomic_store_n(&g_role, role, __ATOMIC_RELAXED);
    InstallOurs(); // SA_RESTART differs
    SetMask(SIG_SETMASK, old, nullptr);
    return;
  }
  g_kept = Deferrable();
  SetMask(SIG_BLOCK, g_kept, &old);
  g_deferred = 0;
  for (int sig = 1; sig <= 64; ++sig) {
    if (!(g_kept & Bit(sig)))
      continue;
    KSigaction cur = {};
    RawSyscall(SYS_rt_sigaction, sig, 0, long(&cur), 8);
    g_prog[sig] = cur;
    if (IsHandler(cur))
      g_deferred |= Bit(sig);
  }
  for (ThreadSigs &t : g_threads)
    t.queue_head = t.queue_len = 0;
  __atomic_store_n(&g_role, role, __ATOMIC_RELAXED);
  g_active = true;
  InstallOurs();
  SetMask(SIG_SETMASK, old, nullptr);
}

// The program's handler for `sig`, as the kernel would run it: the
// program's sa_mask (and the signal itself unless SA_NODEFER) blocked on top
// of `mask`, SA_RESETHAND applied. No alternate stack (SA_ONSTACK): it runs
// on the stack of the call it precedes.
void RunHandler(int sig, siginfo_t *info, uint64_t mask) {
  KSigaction act = g_prog[sig];
  if (act.flags & SA_RESETHAND) {
    KSigaction dfl = {};
    g_prog[sig] = dfl;
    g_deferred &= ~Bit(sig);
    dfl.flags = 0;
    RawSyscall(SYS_rt_sigaction, sig, long(&dfl), 0, 8);
  }
  uint64_t during = mask | act.mask | (act.flags & SA_NODEFER ? 0 : Bit(sig));
  SetMask(SIG_SETMASK, during, nullptr);
  info->si_signo = sig;
  if (act.flags & SA_SIGINFO) {
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    memcpy(&uc.uc_sigmask, &mask, sizeof mask);
    reinterpret_cast<void (*)(int, siginfo_t *, void *)>(act.handler)(
        sig, info, &uc);
  } else {
    reinterpret_cast<void (*)(int)>(act.handler)(sig);
  }
  SetMask(SIG_SETMASK, mask, nullptr);
}

// Leader: every pending signal the program's mask (or `under`, the mask of
// a sigsuspend) lets through, lowest number first, each recorded then
// handled. Returns how many; *restart is cleared when one of their handlers
// lacks SA_RESTART.
int Deliver(bool *restart, const uint64_t *under = nullptr) {
  int n = 0;
  for (;;) {
    uint64_t real, old;
    SetMask(SIG_BLOCK, g_kept, &real);
    old = under ? *under : real;
    Lock();
    // Another thread's own signals are not this thread's to deliver.
    uint64_t ready = (g_shared | Own().pending) & ~old;
    int sig = ready ? __builtin_ctzll(ready) + 1 : 0;
    siginfo_t info;
    bool taken = sig && Take(sig, &info);
    Unlock();
    if (!ready) {
      SetMask(SIG_SETMASK, real, nullptr);
      return n;
    }
    if (!taken || !(g_deferred & Bit(sig))) { // no handler any more
      SetMask(SIG_SETMASK, real, nullptr);
      continue;
    }
    if (!(g_prog[sig].flags & SA_RESTART))
      *restart = false;
    // The record comes first: the follower runs its handler where it
    // reads it, before the handler's own calls.
    if (__atomic_load_n(&g_mode, __ATOMIC_RELAXED) == kLeader &&
        !ShimAppendControl(kCtlSignal, 0, sig, &info, sizeof info))
      ShimStopLeading();
    RunHandler(sig, &info, old);
    if (under)
      SetMask(SIG_SETMASK, real, nullptr);
    n++;
    g_sig_deliveries++;
  }
}

// The calls the kernel restarts after a handler with SA_RESTART
// (signal(7)); the rest (poll, epoll_wait, select, sleeps, ...) return
// EINTR whatever the flag says.
bool Restartable(long nr) {
  switch (nr) {
  case SYS_read: case SYS_readv: case SYS_write: case SYS_writev:
  case SYS_pread64: case SYS_pwrite64: case SYS_preadv: case SYS_pwritev:
  case SYS_preadv2: case SYS_pwritev2:
  case SYS_ioctl: case SYS_open: case SYS_openat: case SYS_wait4:
  case SYS_waitid: case SYS_accept: case SYS_accept4: case SYS_connect:
  case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg: case SYS_sendto:
  case SYS_sendmsg: case SYS_sendmmsg: case SYS_flock: case SYS_fcntl:
  case SYS_futex: case SYS_getrandom: case SYS_clone:
    return true;
  default:
    return false;
  }
}

bool Leading() {
  return g_active && g_role == kLeading &&
         __atomic_load_n(&g_mode, __ATOMIC_RELAXED) == kLeader;
}

bool DefaultIgnores(int sig) {
  return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

} // namespace

void SigLead() { Start(kLeading); }

void SigFollow(int leader) {
  if (!Enabled())
    return;
  // Noted while this process led (a promotion: it follows from now on) and
  // not delivered yet: they go to the new leader.
  bool was_leading = g_active && g_role == kLeading;
  g_partner = leader;
  g_parent = int(RawSyscall(SYS_getppid));
  Start(kFollowing);
  if (!was_leading)
    return;
  uint64_t old;
  SetMask(SIG_BLOCK, g_kept, &old);
  Lock();
  uint64_t pending = __atomic_load_n(&g_sig_pending, __ATOMIC_RELAXED);
  for (int sig = 1; sig <= 64; ++sig)
    if (pending & Bit(sig))
      RawSyscall(SYS_kill, leader, sig);
  ClearTables();
  Unlock();
  SetMask(SIG_SETMASK, old, nullptr);
}

void SigStop() {
  if (!g_active)
    return;
  uint64_t old;
  SetMask(SIG_BLOCK, g_kept, &old);
  for (int sig = 1; sig <= 64; ++sig)
    if (g_deferred & Bit(sig))
      RawSyscall(SYS_rt_sigaction, sig, long(&g_prog[sig]), 0, 8);
  // What was noted and not delivered goes to the program's own handlers,
  // with its siginfo: what was sent to the process to this thread, what
  // was sent to a thread to that thread.
  long pid = RawSyscall(SYS_getpid), tid = RawSyscall(SYS_gettid);
  Lock();
  for (int sig = 1; sig < 32; ++sig)
    if (g_shared & Bit(sig))
      Requeue(pid, tid, sig, g_info[sig]);
  for (int i = 0; i < g_rt_len; ++i)
    Requeue(pid, tid, g_rt[i].si_signo, g_rt[i]);
  for (const ThreadSigs &t : g_threads)
    for (int i = 0; i < t.len; ++i)
      Requeue(pid, t.tid, t.q[i].si_signo, t.q[i]);
  ClearTables();
  Unlock();
  g_active = false;
  g_deferred = 0;
  __atomic_store_n(&g_role, kNone, __ATOMIC_RELAXED);
  SetMask(SIG_SETMASK, old, nullptr); // the queued ones are delivered here
}

uint64_t SigForkBegin() {
  uint64_t old = 0;
  if (g_active)
    SetMask(SIG_BLOCK, g_kept, &old);
  return old;
}

void SigThreadEnds() {
  if (!g_active)
    return;
  uint64_t old;
  SetMask(SIG_BLOCK, g_kept, &old);
  Lock();
  ThreadSigs &t = Own();
  if (ShimLane() > 0) { // lane 0's table is main's, which ends the process
    t.pending = 0;
    t.len = 0;
    Summarize();
  }
  Unlock();
  SetMask(SIG_SETMASK, old, nullptr);
}

void SigForkedChild(int leader) {
  ClearAll();
  if (leader > 0) {
    g_partner = leader;
    g_parent = int(RawSyscall(SYS_getppid));
  }
}

void SigForkEnd(uint64_t mask, bool child, bool followed) {
  if (!g_active)
    return;
  if (child && followed) {
    SigForkedChild(0);
  } else if (child) {
    ClearAll();
    SigStop(); // blocked already: nothing is delivered in it
  }
  SetMask(SIG_SETMASK, mask, nullptr);
}

void SigAtEntry() {
  if (!Leading())
    return;
  bool restart = true;
  Deliver(&restart);
}

bool SigInterrupted(long nr, long r, bool libc) {
  int saved = errno;
  bool eintr = libc ? r == -1 && saved == EINTR : r == -EINTR;
  if (!eintr || !Leading())
    return false;
  bool restart = true;
  int n = Deliver(&restart);
  errno = saved;
  return n > 0 && restart && Restartable(nr);
}

long SigWait(long nr, const long a[6], const uint64_t *mask) {
  bool restart = true;
  if (!Leading())
    return RawSyscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (mask && Deliver(&restart, mask) > 0)
    return -EINTR;
  long r = RawSyscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (r == -EINTR)
    Deliver(&restart, mask);
  return r;
}

bool SigRestartLocal(long nr, long r) {
  if (r != -EINTR || !Restartable(nr) || !g_active || g_role != kLeading)
    return false;
  uint64_t pending = __atomic_load_n(&g_sig_pending, __ATOMIC_ACQUIRE);
  if (!pending)
    return false;
  for (int sig = 1; sig <= 64; ++sig)
    if ((pending & Bit(sig) & g_deferred) && !(g_prog[sig].flags & SA_RESTART))
      return false;
  return true;
}

void SigNoteRecorded(int sig, const siginfo_t *info) {
  ThreadSigs &t = Own();
  if (sig < 1 || sig > 64 || t.queue_len == kQueue)
    return; // a handler that never returns to the reader: bounded anyway
  Recorded &r = t.queue[(t.queue_head + t.queue_len++) % kQueue];
  r.sig = sig;
  r.info = *info;
}

bool SigRecordedPending() { return Own().queue_len != 0; }

bool SigRunRecorded(char *why, unsigned long size) {
  ThreadSigs &t = Own();
  while (t.queue_len) {
    Recorded r = t.queue[t.queue_head];
    t.queue_head = (t.queue_head + 1) % kQueue;
    t.queue_len--;
    int sig = r.sig;
    KSigaction act = g_prog[sig];
    if (!g_active || !(g_kept & Bit(sig))) // no table kept: the kernel's
      RawSyscall(SYS_rt_sigaction, sig, 0, long(&act), 8);
    if (act.handler == SIG_IGN ||
        (act.handler == SIG_DFL && DefaultIgnores(sig)))
      continue;
    if (act.handler == SIG_DFL) {
      snprintf(why, size,
               "the leader handled signal %d (SIG%s) here; the follower has "
               "no handler for it (its default action would end it)",
               sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
      return false;
    }
    uint64_t old;
    SetMask(SIG_BLOCK, 0, &old);
    g_prog[sig] = act;
    RunHandler(sig, &r.info, old);
  }
  return true;
}

bool SigAction(const long a[6], long *ret) {
  int sig = int(a[0]);
  if (!g_active || sig < 1 || sig > 64 || !(g_kept & Bit(sig)))
    return false;
  if (a[3] != 8) {
    *ret = -EINVAL;
    return true;
  }
  uint64_t old;
  SetMask(SIG_BLOCK, g_kept, &old);
  KSigaction prev = g_prog[sig];
  if (a[1]) {
    KSigaction n;
    memcpy(&n, reinterpret_cast<const void *>(a[1]), sizeof n);
    if (IsHandler(n)) {
      // Returns through the layer's restorer once restored (SUD, Sud.cpp).
      n.flags |= kSaRestorer;
      n.restorer = reinterpret_cast<void *>(mvedsua_mve_restore_rt);
      g_prog[sig] = n;
      if (!(g_deferred & Bit(sig))) {
        g_deferred |= Bit(sig);
        KSigaction sa = Ours();
        RawSyscall(SYS_rt_sigaction, sig, long(&sa), 0, 8);
      }
    } else {
      // SIG_DFL and SIG_IGN act in the kernel at once; what was noted for
      // a handler that is gone is dropped.
      long r = RawSyscall(SYS_rt_sigaction, sig, long(&n), 0, 8);
      if (r != 0) {
        SetMask(SIG_SETMASK, old, nullptr);
        *ret = r;
        return true;
      }
      g_prog[sig] = n;
      g_deferred &= ~Bit(sig);
      Drop(sig);
    }
  }
  SetMask(SIG_SETMASK, old, nullptr);
  if (a[2])
    memcpy(reinterpret_cast<void *>(a[2]), &prev, sizeof prev);
  *ret = 0;
  return true;
}

} // namespace mve
} // namespace mvedsua
