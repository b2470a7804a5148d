// Threads.cpp: managed threads, their quiescence and their relaunch
// (Threads.h has the protocol).
//
// One lock and one condition variable order everything; none of it is on a
// hot path: a managed thread takes the lock only when it creates or ends a
// thread, parks, arrives, or registers a condition wait for wake-ups. The
// update-point fast path stays the single flag check.
#include "Threads.h"
#include "Runtime.h"
#include "StateTransfer.h"
#include "ToolApi.h"
#include "mve/Follower.h"
#include "mve/Raw.h"
#include "mve/Shim.h"
#include "mve/Sud.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern "C" volatile int __mvedsua_update_pending;
extern "C" void __mvedsua_rt_update_point_slow(const char *name);

namespace mvedsua {

int g_wait_points;

namespace {

constexpr int kMaxThreads = 256;
constexpr uint64_t kDefaultQuiesceMs = 2000;
constexpr long kKickEveryMs = 10;

enum SlotState : int {
  kFree = 0,
  kRunning,    // the old (or only) version's code
  kParked,     // stopped at `point` for an update
  kRelaunched, // runs the new version's function, not yet at `point`
  kArrived,    // reached `point` in the new version; waits for the others
  kFresh,      // created by the new version while it updates
};

struct Slot {
  int state;
  pid_t tid;
  void *(*fn)(void *);
  void *arg;
  void *(*new_fn)(void *); // after RemapThreadStarts
  void *new_arg;
  void (*kick)(void *);  // the program's way to wake it for an update
  void *kick_arg;
  pthread_t *handle;     // where the program keeps the thread's pthread_t
  pthread_t *new_handle; // the same in the new version's state
  const char *point;      // where it parked
  const char *last_point; // the last update point it passed, for messages
  pthread_cond_t *cond;   // a condition wait it is in (mvedsua_cond_wait_at)
  int in_wait;            // in a wait point's blocking call
  sigjmp_buf start;       // its ThreadMain frame, to relaunch from
  char name[64];          // the start function's symbol, for messages
  bool removed;           // parked, and not to be relaunched: it ends
  bool spawn;             // added while updating: no thread yet
  bool has_attr;          // ... created with `attr`
  pthread_attr_t attr;
  bool join_lane;         // started while a follower exists: its lane
};

Slot g_slots[kMaxThreads];
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv; // CLOCK_MONOTONIC, set up by the constructor
pthread_key_t g_exit_key;

enum Phase : int { kIdle = 0, kQuiescing, kLaunched };
int g_phase;
pid_t g_driver_tid;
void (*g_resume_hook)(int slot);
// The driver's own wake-up (mvedsua_thread_on_update from main's thread):
// run by the wake signal's handler on that thread when a request arrives.
void (*g_driver_kick)(void *);
void *g_driver_kick_arg;
bool g_recreate;     // a forked follower: parked slots have no kernel thread
bool g_hold_arrived; // ... and their relaunches wait for the replay to start

#define MVEDSUA_TLS __thread __attribute__((tls_model("initial-exec")))
MVEDSUA_TLS int t_slot = -1;
MVEDSUA_TLS int t_woken; // the wake signal interrupted this thread
MVEDSUA_TLS int t_waiting; // in the blocking call of a wait point

pid_t Gettid() { return pid_t(syscall(SYS_gettid)); }

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Whether a wait that is an update point takes it now: the driver whenever
// an update is pending; a managed thread only once the driver has started
// one (before that a pending request is the driver's to take, and taking
// the point would turn the thread's wait loop into a spin).
bool TakeWaitPoint(int k) {
  if (k < 0 || !__mvedsua_update_pending)
    return false;
  return k == 0 || __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE) != kIdle;
}

// Waits on g_cv (g_lock held) for at most `ms`.
void WaitMs(long ms) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += ms * 1000000;
  ts.tv_sec += ts.tv_nsec / 1000000000;
  ts.tv_nsec %= 1000000000;
  pthread_cond_timedwait(&g_cv, &g_lock, &ts);
}

uint64_t QuiesceTimeoutMs() {
  const char *env = getenv("MVEDSUA_QUIESCE_TIMEOUT_MS");
  char *end;
  unsigned long long ms = env && *env ? strtoull(env, &end, 10) : 0;
  return env && *env && *end == '\0' && ms > 0 ? ms : kDefaultQuiesceMs;
}

int CountIn(SlotState st) {
  int n = 0;
  for (Slot &s : g_slots)
    n += s.state == st;
  return n;
}

// "thread 2 (worker_main, tid 1234, last at update point 'x')".
std::string Describe(int k) {
  const Slot &s = g_slots[k];
  std::string d = "thread " + std::to_string(k) + " (" +
                  (s.name[0] ? s.name : "?") + ", tid " +
                  std::to_string(s.tid);
  // Inline update points are seen only on their slow path (while an update
  // is pending); wait points always.
  d += s.last_point ? std::string(", last seen at update point '") +
                          s.last_point + "'"
                    : std::string(", not seen at an update point");
  return d + ")";
}

std::string DescribeAll(SlotState st, int *count) {
  std::string out;
  *count = 0;
  for (int k = 1; k < kMaxThreads; ++k)
    if (g_slots[k].state == st) {
      out += (*count ? ", " : "") + Describe(k);
      ++*count;
    }
  return out;
}

// Wakes the running threads that wait: a condition wait's variable, or the
// wake signal for a wait point's blocking call (which then returns EINTR).
// (g_lock held; the program's callbacks run without it.)
void KickRunning() {
  // Raw calls: in a process that records for a follower, libc's would be
  // recorded in this thread's lane, and a tgkill replayed in the follower.
  long pid = mve::RawSyscall(SYS_getpid);
  struct Kick {
    void (*fn)(void *);
    void *arg;
  } kicks[kMaxThreads];
  int n = 0;
  for (Slot &s : g_slots) {
    if (s.state != kRunning)
      continue;
    if (s.cond)
      pthread_cond_broadcast(s.cond);
    if (__atomic_load_n(&s.in_wait, __ATOMIC_ACQUIRE) && s.tid > 0)
      mve::RawSyscall(SYS_tgkill, pid, s.tid, MVEDSUA_WAKE_SIGNAL);
    if (s.kick)
      kicks[n++] = {s.kick, s.kick_arg};
  }
  if (n == 0)
    return;
  pthread_mutex_unlock(&g_lock);
  for (int i = 0; i < n; ++i)
    kicks[i].fn(kicks[i].arg);
  pthread_mutex_lock(&g_lock);
}

void OnThreadExit(void *raw) {
  int k = int(reinterpret_cast<intptr_t>(raw)) - 1;
  pthread_mutex_lock(&g_lock);
  g_slots[k].state = kFree;
  g_slots[k].cond = nullptr;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_lock);
}

void *ThreadMain(void *raw) {
  int k = int(reinterpret_cast<intptr_t>(raw));
  Slot &s = g_slots[k];
  t_slot = k;
  s.tid = Gettid();
  pthread_setspecific(g_exit_key, reinterpret_cast<void *>(intptr_t(k) + 1));
  if (s.join_lane && g_resume_hook) // records or replays from its first call
    g_resume_hook(k);
  // A relaunch comes back here with the new version's function in the slot.
  sigsetjmp(s.start, 1);
  if (s.removed)
    return nullptr; // taken out of the update (kitsune_thread_remove)
  return s.fn(s.arg);
}

int ReserveSlot(void *(*fn)(void *), void *arg, pthread_t *handle) {
  pthread_mutex_lock(&g_lock);
  int k = 1;
  while (k < kMaxThreads && g_slots[k].state != kFree)
    ++k;
  if (k < kMaxThreads) {
    Slot &s = g_slots[k];
    memset(&s, 0, sizeof s);
    s.state = IsUpdating() ? kFresh : kRunning;
    s.fn = fn;
    s.arg = arg;
    s.handle = handle;
    Dl_info info;
    if (const char *key = RegisteredFunctionKey(reinterpret_cast<void *>(fn)))
      snprintf(s.name, sizeof s.name, "%s", key);
    else if (dladdr(reinterpret_cast<void *>(fn), &info) && info.dli_sname)
      snprintf(s.name, sizeof s.name, "%s", info.dli_sname);
  }
  pthread_mutex_unlock(&g_lock);
  return k < kMaxThreads ? k : -1;
}

// A running managed thread stops at `name` until the driver decides: back
// to its caller in the old version, or a relaunch in the new one.
void Park(int k, const char *name) {
  Slot &s = g_slots[k];
  StageThreadLocals(k); // its own frames' migrated locals, while they live
  pthread_mutex_lock(&g_lock);
  s.point = name;
  s.state = kParked;
  pthread_cond_broadcast(&g_cv);
  while (g_phase == kQuiescing)
    pthread_cond_wait(&g_cv, &g_lock);
  bool relaunch = s.state == kRelaunched;
  if (!relaunch)
    s.state = kRunning;
  pthread_mutex_unlock(&g_lock);
  if (!relaunch) {
    if (g_resume_hook)
      g_resume_hook(k);
    return;
  }
  ForgetLocals();
  siglongjmp(s.start, 1);
}

void Arrive(Slot &s) {
  pthread_mutex_lock(&g_lock);
  s.state = kArrived;
  pthread_cond_broadcast(&g_cv);
  while (g_phase == kLaunched && s.state == kArrived)
    pthread_cond_wait(&g_cv, &g_lock);
  pthread_mutex_unlock(&g_lock);
  if (g_resume_hook)
    g_resume_hook(int(&s - g_slots));
}

// The mask a --wait-points list names; -1 at the first unknown word, named
// in *bad (up to `size` bytes).
int ParseWaitPoints(const char *list, char *bad, size_t size) {
  int mask = 0;
  std::string s(list);
  size_t at = 0;
  for (;;) {
    size_t comma = s.find(',', at);
    std::string w = s.substr(at, comma == std::string::npos ? std::string::npos
                                                            : comma - at);
    if (w == "epoll_wait" || w == "epoll")
      mask |= kWaitEpoll;
    else if (w == "poll")
      mask |= kWaitPoll;
    else if (w == "select")
      mask |= kWaitSelect;
    else if (w == "accept")
      mask |= kWaitAccept;
    else if (w == "all")
      mask |= kWaitAll;
    else {
      snprintf(bad, size, "%s", w.c_str());
      return -1;
    }
    if (comma == std::string::npos)
      return mask;
    at = comma + 1;
  }
}

// The parent's parked threads were waiting on g_cv when the process was
// forked: its copy counts waiters that do not exist here, and a broadcast
// would wait for them forever. Nobody else runs yet: both start afresh.
void InitSync() {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&g_cv, &attr);
  pthread_mutex_init(&g_lock, nullptr);
}

__attribute__((constructor(102))) void InitThreads() {
  InitSync();
  pthread_key_create(&g_exit_key, OnThreadExit);
}

// On the driver's thread, in the wake signal's handler: the program's kick
// brings its loop to an update point (a byte on a pipe its event loop
// watches). The kick's own calls are the runtime's, like the signal:
// neither recorded nor trapped; what the loop then reads of them is.
void KickDriver() {
  void (*kick)(void *) = __atomic_load_n(&g_driver_kick, __ATOMIC_ACQUIRE);
  if (!kick || !__atomic_load_n(&__mvedsua_update_pending, __ATOMIC_RELAXED))
    return;
  int saved_errno = errno;
  bool paused = mve::g_shim_paused;
  char selector = __atomic_load_n(&mve::g_sud_selector, __ATOMIC_RELAXED);
  mve::g_shim_paused = true;
  mve::SudAllow();
  kick(g_driver_kick_arg);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&mve::g_sud_selector, selector, __ATOMIC_RELAXED);
  mve::g_shim_paused = paused;
  errno = saved_errno;
}

} // namespace

int ThreadSlot() { return t_slot; }

void SetDriverThread() {
  t_slot = 0;
  g_driver_tid = Gettid();
  // Read here, not in a constructor: mvedsua-run sets it from --wait-points
  // after the runtime is loaded. The program may add more.
  char bad[64];
  const char *env = getenv("MVEDSUA_WAIT_POINTS");
  int mask = env ? ParseWaitPoints(env, bad, sizeof bad) : 0;
  if (mask < 0)
    Report("warning: MVEDSUA_WAIT_POINTS: unknown wait '%s' (known: "
           "epoll_wait, poll, select, accept, all); no wait point is taken "
           "from it",
           bad);
  else
    __atomic_or_fetch(&g_wait_points, mask, __ATOMIC_RELAXED);
}

int ManagedThreadCount() {
  pthread_mutex_lock(&g_lock);
  int n = 0;
  for (int k = 1; k < kMaxThreads; ++k)
    n += g_slots[k].state != kFree;
  pthread_mutex_unlock(&g_lock);
  return n;
}

void ThreadAtPoint(const char *name) {
  int k = t_slot;
  if (k <= 0)
    return;
  Slot &s = g_slots[k];
  s.last_point = name;
  int st = __atomic_load_n(&s.state, __ATOMIC_ACQUIRE);
  if (st == kRelaunched) {
    if (name && s.point && strcmp(name, s.point) == 0)
      Arrive(s);
    return;
  }
  if (st == kRunning && __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE) == kQuiescing)
    Park(k, name);
}

int QuiesceThreads(std::string *reason) {
  pthread_mutex_lock(&g_lock);
  if (CountIn(kRunning) == 0) {
    pthread_mutex_unlock(&g_lock);
    return 0;
  }
  __atomic_store_n(&g_phase, kQuiescing, __ATOMIC_RELEASE);
  // Other threads' update points take the slow path from now on.
  __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELEASE);
  uint64_t limit = QuiesceTimeoutMs(), t0 = NowMs();
  while (CountIn(kRunning) > 0 && NowMs() - t0 < limit) {
    KickRunning(); // again each round: a wake-up can land before a wait
    WaitMs(kKickEveryMs);
  }
  int missing = 0;
  std::string who = DescribeAll(kRunning, &missing);
  if (missing == 0) {
    pthread_mutex_unlock(&g_lock);
    return 0;
  }
  int parked = CountIn(kParked);
  *reason = "update failed: " + std::to_string(missing) + " of " +
            std::to_string(missing + parked) +
            " threads did not reach an update point within " +
            std::to_string(limit) + " ms: " + who +
            "; the program goes on in the old version";
  __atomic_store_n(&g_phase, kIdle, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_lock);
  DropStagedLocals();
  return -1;
}

void ReleaseThreads() {
  pthread_mutex_lock(&g_lock);
  if (g_phase == kQuiescing) {
    __atomic_store_n(&g_phase, kIdle, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&g_cv);
  }
  pthread_mutex_unlock(&g_lock);
  DropStagedLocals();
}

int RemapThreadStarts(std::string *reason) {
  pthread_mutex_lock(&g_lock);
  int rc = 0;
  for (int k = 1; k < kMaxThreads && rc == 0; ++k) {
    Slot &s = g_slots[k];
    if (s.state != kParked)
      continue;
    void *fn = nullptr;
    if (RemapOldPointer(reinterpret_cast<void *>(s.fn), &fn) < 0) {
      *reason = "update refused: the new version has no function '" +
                std::string(s.name[0] ? s.name : "?") + "' for " +
                Describe(k) +
                " to run (a thread's start function must be registered in "
                "both versions: it is when the version passes it to "
                "mvedsua_thread_create)";
      rc = -1;
      break;
    }
    s.new_fn = reinterpret_cast<void *(*)(void *)>(fn);
    RemapOldPointer(s.arg, &s.new_arg);
    void *h = nullptr;
    RemapOldPointer(s.handle, &h);
    s.new_handle = static_cast<pthread_t *>(h);
  }
  pthread_mutex_unlock(&g_lock);
  return rc;
}

int LaunchThreads(uint64_t timeout_ms, std::string *reason) {
  pthread_mutex_lock(&g_lock);
  bool any = false;
  for (int k = 1; k < kMaxThreads; ++k) {
    Slot &s = g_slots[k];
    if (s.state != kParked)
      continue;
    if (s.removed) { // the parked thread unwinds to ThreadMain and ends
      s.state = g_recreate ? kFree : kRelaunched;
      any = true;
      continue;
    }
    s.fn = s.new_fn ? s.new_fn : s.fn;
    s.arg = s.new_fn ? s.new_arg : s.arg;
    s.handle = s.new_fn ? s.new_handle : s.handle;
    s.state = kRelaunched;
    any = true;
    if (!g_recreate && !s.spawn)
      continue; // in place: the same thread, the same pthread_t
    pthread_t t;
    if (pthread_create(&t, s.has_attr ? &s.attr : nullptr, ThreadMain,
                       reinterpret_cast<void *>(intptr_t(k))) != 0)
      s.state = kFree; // reported below as missing from the count
    else if (s.handle) // the program's handle names the new thread
      *s.handle = t;
  }
  __atomic_store_n(&g_phase, any ? kLaunched : kIdle, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&g_cv);
  uint64_t t0 = NowMs();
  while (CountIn(kRelaunched) > 0 &&
         (timeout_ms == 0 || NowMs() - t0 < timeout_ms))
    WaitMs(50);
  int missing = 0;
  std::string who = DescribeAll(kRelaunched, &missing);
  pthread_mutex_unlock(&g_lock);
  if (missing == 0)
    return 0;
  *reason = "update failed: " + std::to_string(missing) +
            " relaunched thread(s) did not reach the update point they "
            "stopped at within " +
            std::to_string(timeout_ms) + " ms: " + who +
            "; they keep running the new version";
  return -1;
}

int NextParkedThread(int after) {
  pthread_mutex_lock(&g_lock);
  int k = after < 1 ? 1 : after + 1;
  while (k < kMaxThreads &&
         (g_slots[k].state != kParked || g_slots[k].removed))
    ++k;
  pthread_mutex_unlock(&g_lock);
  return k < kMaxThreads ? k : -1;
}

void ParkedThreadStart(int k, void *(**fn)(void *), void **arg,
                       const char **point) {
  pthread_mutex_lock(&g_lock);
  *fn = g_slots[k].new_fn;
  *arg = g_slots[k].new_arg;
  *point = g_slots[k].point;
  pthread_mutex_unlock(&g_lock);
}

void SetParkedThreadStart(int k, void *(*fn)(void *), void *arg) {
  pthread_mutex_lock(&g_lock);
  g_slots[k].new_fn = fn;
  g_slots[k].new_arg = arg;
  pthread_mutex_unlock(&g_lock);
}

void RemoveParkedThread(int k) {
  pthread_mutex_lock(&g_lock);
  g_slots[k].removed = true;
  pthread_mutex_unlock(&g_lock);
}

int AddParkedThread(void *(*fn)(void *), void *arg, const char *point,
                    const pthread_attr_t *attr) {
  int k = ReserveSlot(fn, arg, nullptr);
  if (k < 0)
    return -1;
  pthread_mutex_lock(&g_lock);
  Slot &s = g_slots[k];
  s.state = kParked;
  s.spawn = true;
  s.new_fn = fn;
  s.new_arg = arg;
  s.point = strdup(point ? point : ""); // kept: the slot may outlive it
  s.has_attr = attr != nullptr;
  if (attr) {
    // What matters of it, copied: glibc's attribute may point to memory of
    // its own (a cpuset), which the program may free once this returned.
    size_t stack = 0, guard = 0;
    int detach = PTHREAD_CREATE_JOINABLE;
    pthread_attr_init(&s.attr);
    if (pthread_attr_getstacksize(attr, &stack) == 0)
      pthread_attr_setstacksize(&s.attr, stack);
    if (pthread_attr_getguardsize(attr, &guard) == 0)
      pthread_attr_setguardsize(&s.attr, guard);
    if (pthread_attr_getdetachstate(attr, &detach) == 0)
      pthread_attr_setdetachstate(&s.attr, detach);
  }
  pthread_mutex_unlock(&g_lock);
  return k;
}

void EndThreadUpdate() {
  if (g_hold_arrived)
    return; // ReleaseHeldThreads, once the follower replays
  pthread_mutex_lock(&g_lock);
  for (Slot &s : g_slots)
    if (s.state == kArrived || s.state == kRelaunched || s.state == kFresh)
      s.state = kRunning;
  __atomic_store_n(&g_phase, kIdle, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_lock);
}

int MaxManagedSlot() {
  pthread_mutex_lock(&g_lock);
  int max = 0;
  for (int k = 1; k < kMaxThreads; ++k)
    if (g_slots[k].state != kFree)
      max = k;
  pthread_mutex_unlock(&g_lock);
  return max;
}

const char *ThreadName(int k) {
  return k > 0 && k < kMaxThreads && g_slots[k].name[0] ? g_slots[k].name : "?";
}

void SetThreadResumeHook(void (*hook)(int slot)) { g_resume_hook = hook; }

void ThreadsForkedChild() {
  InitSync();
  g_recreate = true;
  g_hold_arrived = true;
  g_driver_tid = Gettid();
}

void ReleaseHeldThreads() {
  g_hold_arrived = false;
  EndThreadUpdate();
}

const char *ThreadUpdatingFrom() {
  int k = t_slot;
  return k > 0 && g_slots[k].state == kRelaunched ? g_slots[k].point : nullptr;
}

bool ThreadIsUpdating() {
  int k = t_slot;
  return k > 0 && __atomic_load_n(&g_slots[k].state, __ATOMIC_ACQUIRE) == kRelaunched;
}

void WaitPointEnter(const char *point) {
  int k = t_slot;
  if (k < 0)
    return; // a thread the runtime does not manage: no update point here
  t_woken = 0;
  if (k > 0)
    g_slots[k].last_point = point;
  if (TakeWaitPoint(k))
    __mvedsua_rt_update_point_slow(point);
  if (k > 0)
    __atomic_store_n(&g_slots[k].in_wait, 1, __ATOMIC_RELEASE);
  t_waiting = 1;
}

bool WaitPointKicked(long ret) { return ret == -EINTR && t_waiting && t_woken; }

bool WaitPointInterrupted(int saved_errno) {
  int k = t_slot;
  t_waiting = 0;
  if (k < 0)
    return false;
  if (k > 0)
    __atomic_store_n(&g_slots[k].in_wait, 0, __ATOMIC_RELEASE);
  return saved_errno == EINTR && t_woken;
}

// The supervisor's wake signal goes to the process: whichever thread takes
// it passes it on to the driver, which is the one that must look at the
// request (a thread it kicked during quiescence does not).
void NoteWakeSignal() {
  t_woken = 1;
  // Raw calls: this runs in a signal handler on whichever thread the kernel
  // chose, possibly one recording its lane for a follower, which never gets
  // the signal; a recorded getpid() there was a record the follower's thread
  // (asleep in a condition wait) never consumed, and promote waited for it.
  if (t_slot != 0 && g_driver_tid > 0 &&
      __atomic_load_n(&g_phase, __ATOMIC_RELAXED) == kIdle)
    mve::RawSyscall(SYS_tgkill, mve::RawSyscall(SYS_getpid), g_driver_tid,
                    MVEDSUA_WAKE_SIGNAL);
  if (t_slot == 0)
    KickDriver();
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT int __mvedsua_rt_thread_create(pthread_t *thread,
                                              const pthread_attr_t *attr,
                                              void *(*start)(void *),
                                              void *arg) {
  bool busy = mve::MultiVersionBusy();
  int k = ReserveSlot(start, arg, thread);
  char why[256] = "no slot is free";
  if (busy && (k < 0 || !mve::ShimLaneForNewThread(k, why, sizeof why))) {
    // Its lane must exist in both processes: the leader announces it in the
    // creating thread's log and the follower opens it where its program
    // starts the same thread (Shim.h).
    if (k > 0)
      OnThreadExit(reinterpret_cast<void *>(intptr_t(k) + 1));
    const char *key = RegisteredFunctionKey(reinterpret_cast<void *>(start));
    Report("error: a thread cannot be started now during the multi-version "
           "update (%s): %s refused",
           why, key ? key : "the thread");
    return EAGAIN;
  }
  if (k < 0) {
    Report("error: more than %d threads started through mvedsua; this one "
           "runs unmanaged (it will not take part in updates)",
           kMaxThreads - 1);
    return pthread_create(thread, attr, start, arg);
  }
  g_slots[k].join_lane = busy;
  // A thread's clone cannot run from the SIGSYS handler: the calls that
  // make it (memory, the clone) concern this process only and pass
  // untrapped.
  char selector = mve::g_sud_selector;
  mve::SudAllow();
  int rc = pthread_create(thread, attr, ThreadMain,
                          reinterpret_cast<void *>(intptr_t(k)));
  __atomic_store_n(&mve::g_sud_selector, selector, __ATOMIC_RELAXED);
  if (rc != 0)
    OnThreadExit(reinterpret_cast<void *>(intptr_t(k) + 1));
  return rc;
}

// The condition wait is the update point `point`: taken with the mutex
// released, before the wait and when an update wakes it; either way the
// call then returns 0 (a spurious wakeup) with the mutex held again.
MVEDSUA_EXPORT int __mvedsua_rt_cond_wait(const char *point,
                                          pthread_cond_t *cond,
                                          pthread_mutex_t *mutex,
                                          const struct timespec *abstime) {
  int k = t_slot;
  if (TakeWaitPoint(k)) {
    pthread_mutex_unlock(mutex);
    __mvedsua_rt_update_point_slow(point);
    pthread_mutex_lock(mutex);
    return 0;
  }
  if (k > 0) {
    pthread_mutex_lock(&g_lock);
    g_slots[k].cond = cond;
    pthread_mutex_unlock(&g_lock);
  }
  int rc = abstime ? pthread_cond_timedwait(cond, mutex, abstime)
                   : pthread_cond_wait(cond, mutex);
  if (k > 0) {
    pthread_mutex_lock(&g_lock);
    g_slots[k].cond = nullptr;
    pthread_mutex_unlock(&g_lock);
  }
  if (TakeWaitPoint(k)) {
    pthread_mutex_unlock(mutex);
    __mvedsua_rt_update_point_slow(point);
    pthread_mutex_lock(mutex);
    return 0;
  }
  return rc;
}

// The calling managed thread's wake-up for updates (Kitsune's
// ktthreads_update_callback): called, from the thread that drives the
// update, while it waits for this one to stop. From the thread that runs
// main: called in the wake signal's handler on that thread when a request
// arrives (so it must be async-signal-safe).
MVEDSUA_EXPORT void __mvedsua_rt_thread_on_update(void (*kick)(void *),
                                                  void *arg) {
  int k = t_slot;
  if (k < 0)
    return; // other threads are not waited for
  if (k == 0) {
    __atomic_store_n(&g_driver_kick, nullptr, __ATOMIC_RELEASE);
    g_driver_kick_arg = arg;
    __atomic_store_n(&g_driver_kick, kick, __ATOMIC_RELEASE);
    return;
  }
  pthread_mutex_lock(&g_lock);
  g_slots[k].kick = kick;
  g_slots[k].kick_arg = arg;
  pthread_mutex_unlock(&g_lock);
}

MVEDSUA_EXPORT int mvedsua_rt_parse_wait_points(const char *list, char *bad,
                                                size_t size) {
  return ParseWaitPoints(list, bad, size);
}

MVEDSUA_EXPORT void __mvedsua_rt_wait_points(int mask) {
  __atomic_store_n(&g_wait_points, mask & kWaitAll, __ATOMIC_RELAXED);
}
