// InPlaceUpdate.cpp: whole-program updates in the calling process, Kitsune's
// model: at an update point the new version is loaded beside the old one, the
// state is transferred (StateTransfer.cpp), control unwinds to the driver in
// mvedsua_rt_run_main and the new version's main starts with the original
// argv. The update completes when the new version reaches the update point
// the old one was stopped at.
//
// Nothing here talks to the supervisor: a request comes in through
// RequestUpdate (from the program, or from whoever handles the supervisor
// channel) and the outcome goes out through Report() and the result hook, so
// the same code can run in a forked follower.
#include "Kitsune.h"
#include "StateTransfer.h"
#include "Threads.h"
#include "ToolApi.h"
#include "mve/Follower.h"
#include "mve/Raw.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

namespace mvedsua {
namespace {

// The request's life: Idle -> Claimed (path being written) -> Pending (the
// next update point takes it) -> Taken (loading, transferring, then the new
// version runs to its point) -> Idle.
enum RequestState { kIdle = 0, kClaimed, kPending, kTaken };
int g_request;
char g_request_path[kMaxPath];
int g_request_source;
int g_request_mode; // UpdateMode

// The driver: mvedsua_rt_run_main's frame, where control migrates to.
bool g_driver_ready;
pthread_t g_driver_thread;
// With the signal mask: the new main starts with the mask the program
// started with, not whatever the old version had blocked at its point.
sigjmp_buf g_driver;
mvedsua_rt_main_fn g_main;
int g_argc;
char **g_args;          // what the running version's main was given
char **g_pristine_argv; // a private copy: a version may permute or edit argv
int g_current = -1;
int g_previous = -1; // the version g_current was updated from

// How long a new version may take to reach its update point:
// $MVEDSUA_UPDATE_TIMEOUT_MS, default 30 s, 0 for no limit.
constexpr uint64_t kDefaultTimeoutMs = 30000;
uint64_t g_timeout_ms = kDefaultTimeoutMs;

// The update under way.
int g_updating;
char g_from_point[128];
timespec g_taken;
char *g_display[kMaxVersions]; // the path each version was requested as

mvedsua_rt_update_status g_status;
UpdateResultHook g_hook;
UpdatePollHook g_poll_hook;

uint64_t WallMicros() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

uint64_t MicrosSince(const timespec &t0) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec - t0.tv_sec) * 1000000 +
         (now.tv_nsec - t0.tv_nsec) / 1000;
}

char **CopyArgv(int argc, char *const *argv) {
  char **copy = static_cast<char **>(calloc(size_t(argc) + 1, sizeof(char *)));
  for (int i = 0; copy && i < argc; ++i)
    copy[i] = strdup(argv[i]);
  return copy;
}

const char *BaseName(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

void SetText(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src ? src : "");
}

void Finish(int state, const char *reason) {
  g_status.state = state;
  SetText(g_status.outcome, sizeof g_status.outcome,
          state == MVEDSUA_RT_UPDATE_FINISHED ? "finished" : "failed");
  SetText(g_status.reason, sizeof g_status.reason, reason);
  g_status.completed_us = WallMicros();
  g_status.pause_us = MicrosSince(g_taken);
  if (g_hook)
    g_hook(&g_status);
}

// A refused or failed update: the old version carries on, and says so.
void Fail(const std::string &reason) {
  ReleaseThreads(); // parked threads go on in the old version
  Report("%s; still running %s", reason.c_str(),
         BaseName(g_status.from_path));
  Finish(MVEDSUA_RT_UPDATE_FAILED, reason.c_str());
  __atomic_store_n(&g_request, kIdle, __ATOMIC_RELEASE);
}

// ---- loading the new version ------------------------------------------------

struct FileId {
  dev_t dev;
  ino_t ino;
};

int MatchLoaded(struct dl_phdr_info *info, size_t, void *data) {
  const FileId *want = static_cast<const FileId *>(data);
  struct stat st;
  return info->dlpi_name && info->dlpi_name[0] &&
         stat(info->dlpi_name, &st) == 0 && st.st_dev == want->dev &&
         st.st_ino == want->ino;
}

// dlopen returns the object already loaded for the same file (by name or by
// device and inode), which would "update" a version to itself.
bool AlreadyLoaded(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return false;
  FileId id{st.st_dev, st.st_ino};
  return dl_iterate_phdr(MatchLoaded, &id) != 0;
}

// A private copy of the file in a memfd, loaded as /proc/self/fd/N. The fd
// stays open for the life of the process: its number is part of the loaded
// object's name, and dlopen would take a later object of the same name for
// this one.
int PrivateCopy(const char *path, char *open_path, size_t size,
                std::string *reason) {
  int in = open(path, O_RDONLY | O_CLOEXEC);
  int out = in < 0 ? -1 : memfd_create(BaseName(path), MFD_CLOEXEC);
  char buf[1 << 16];
  ssize_t n = 0;
  while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, size_t(n)) != n)
      n = -1, errno = EIO;
  int saved = errno;
  if (in >= 0)
    close(in);
  if (out < 0 || n < 0) {
    if (out >= 0)
      close(out);
    *reason = std::string("update failed: cannot make a private copy of ") +
              path + ": " + strerror(saved);
    return -1;
  }
  // Above the program's numbers: the program (or, in a multi-version
  // update, the leader whose descriptors this process will hold) uses those.
  out = mve::MoveFdHigh(out);
  snprintf(open_path, size, "/proc/self/fd/%d", out);
  return 0;
}

// Loads the requested object; its version index, or -1 with *reason.
int LoadNew(const char *path, mvedsua_rt_loaded *loaded, std::string *reason) {
  char open_path[kMaxPath];
  SetText(open_path, sizeof open_path, path);
  if (AlreadyLoaded(path) &&
      PrivateCopy(path, open_path, sizeof open_path, reason) < 0)
    return -1;
  char err[1024];
  if (LoadVersionAt(path, open_path, loaded, err, sizeof err) < 0) {
    *reason = std::string("update failed: ") + err;
    return -1;
  }
  if (loaded->version < 0) {
    *reason = std::string("update refused: ") + path +
              " has no mvedsua registry (built without MvedsuaPass.so?)";
    return -1;
  }
  if (loaded->version == g_current) {
    *reason = std::string("update refused: ") + path +
              " resolves to the running version's own object";
    return -1;
  }
  free(g_display[loaded->version]);
  g_display[loaded->version] = strdup(path);
  return loaded->version;
}

// ---- performing and completing ----------------------------------------------

void BeginStatus(const char *point) {
  clock_gettime(CLOCK_MONOTONIC, &g_taken);
  memset(&g_status, 0, sizeof g_status);
  g_status.state = MVEDSUA_RT_UPDATE_IN_PROGRESS;
  g_status.source = g_request_source;
  SetText(g_status.outcome, sizeof g_status.outcome, "in-progress");
  SetText(g_status.point, sizeof g_status.point, point);
  SetText(g_status.from_path, sizeof g_status.from_path,
          VersionDisplayPath(g_current));
  SetText(g_status.to_path, sizeof g_status.to_path, g_request_path);
  FormatVersionId(ComputeVersionId(g_current), g_status.from_id);
  g_status.requested_us = WallMicros();
}

void RecordStats(const TransferStats &st) {
  g_status.entries = st.entries;
  g_status.bytes = st.bytes;
  g_status.transformed = st.transformed;
  g_status.remapped = st.remapped;
  g_status.heap_objects = st.visited;
  g_status.locals = st.locals;
}

// Past the point of no return: the old frames are abandoned and the new
// version's main starts from the driver.
[[noreturn]] void MigrateControl(int to, mvedsua_rt_main_fn main,
                                 const char *point) {
  SetText(g_from_point, sizeof g_from_point, point);
  g_previous = g_current;
  g_current = to;
  g_main = main;
  __atomic_store_n(&g_updating, 1, __ATOMIC_RELEASE);
  // Update points must keep taking the slow path until the new version
  // reaches `point`.
  __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELEASE);
  ForgetLocals();
  optind = 0; // glibc: getopt starts afresh for the new version's main
  siglongjmp(g_driver, 1);
}

void PerformUpdate(const char *point) {
  BeginStatus(point);
  Report("updating to %s at update point '%s'", g_request_path, point);
  std::string reason;
  mvedsua_rt_loaded loaded;
  int from = g_current;
  if (from < 0)
    return Fail("update refused: the running version has no mvedsua registry");
  int to = LoadNew(g_request_path, &loaded, &reason);
  g_status.load_us = MicrosSince(g_taken);
  if (to < 0)
    return Fail(reason);
  FormatVersionId(ComputeVersionId(to), g_status.to_id);
  SnapshotLocals(from);
  TransferStats stats;
  if (PlanTransfer(from, to, BaseName(g_request_path), &reason) < 0 ||
      RemapThreadStarts(&reason) < 0 ||
      CommitTransfer(&stats, &reason) < 0) {
    AbandonTransfer();
    return Fail(reason);
  }
  g_status.transfer_us = MicrosSince(g_taken) - g_status.load_us;
  RecordStats(stats);
  PrepareKitsuneHooks(loaded.handle);
  MigrateControl(to, loaded.main, point);
}

void EndUpdating() {
  FinishTransfer();
  __atomic_store_n(&g_updating, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&__mvedsua_update_pending, 0, __ATOMIC_RELEASE);
}

// The new version runs but has not reached its point in time. It cannot be
// rolled back: it keeps running, no longer updating, and updates are
// accepted again.
void TimeOut() {
  // Threads parked for this update start the new version anyway (it keeps
  // running); they are not waited for.
  std::string ignored;
  LaunchThreads(1, &ignored);
  EndUpdating();
  EndThreadUpdate();
  std::string reason = std::string("update failed: ") +
                       BaseName(g_status.to_path) +
                       " did not reach update point '" + g_from_point +
                       "' within " + std::to_string(g_timeout_ms) +
                       " ms; it keeps running (an in-place update cannot be "
                       "rolled back)";
  Report("%s", reason.c_str());
  Finish(MVEDSUA_RT_UPDATE_FAILED, reason.c_str());
  AnnounceVersion(g_current, VersionDisplayPath(g_current));
  __atomic_store_n(&g_request, kIdle, __ATOMIC_RELEASE);
}

// The relaunched threads did not all reach their points: like TimeOut, the
// new version keeps running; the update is reported failed.
void ThreadsTimedOut(const std::string &reason) {
  EndUpdating();
  EndThreadUpdate();
  Report("%s", reason.c_str());
  Finish(MVEDSUA_RT_UPDATE_FAILED, reason.c_str());
  AnnounceVersion(g_current, VersionDisplayPath(g_current));
  __atomic_store_n(&g_request, kIdle, __ATOMIC_RELEASE);
}

void CompleteUpdate() {
  EndUpdating();
  EndThreadUpdate(); // the relaunched threads, waiting at their points
  Finish(MVEDSUA_RT_UPDATE_FINISHED, "");
  Report("update to %s finished at update point '%s': pause %llu us, %llu "
         "entries (%llu bytes) transferred, %llu pointers remapped, %llu "
         "locals; loading took %llu us, the state transfer %llu us",
         g_status.to_path, g_from_point, (unsigned long long)g_status.pause_us,
         (unsigned long long)g_status.entries,
         (unsigned long long)g_status.bytes,
         (unsigned long long)g_status.remapped,
         (unsigned long long)g_status.locals,
         (unsigned long long)g_status.load_us,
         (unsigned long long)g_status.transfer_us);
  AnnounceVersion(g_current, VersionDisplayPath(g_current));
  // Requests are accepted again only now: one update at a time.
  __atomic_store_n(&g_request, kIdle, __ATOMIC_RELEASE);
}

void OnPointWhileUpdating(const char *name) {
  if (!pthread_equal(pthread_self(), g_driver_thread))
    return ThreadAtPoint(name); // a relaunched thread reaching its point
  std::string reason;
  bool arrived = name && strcmp(name, g_from_point) == 0;
  if (arrived)
    RunMainUpdateHook(); // Kitsune's, before the threads start
  if (arrived && LaunchThreads(g_timeout_ms, &reason) < 0)
    ThreadsTimedOut(reason);
  else if (arrived)
    CompleteUpdate();
  else if (g_timeout_ms && MicrosSince(g_taken) / 1000 >= g_timeout_ms)
    TimeOut();
}

void ReadTimeout() {
  const char *env = getenv("MVEDSUA_UPDATE_TIMEOUT_MS");
  char *end;
  unsigned long long ms = env && *env ? strtoull(env, &end, 10) : 0;
  if (env && *env && *end == '\0')
    g_timeout_ms = ms;
  else if (env && *env)
    Report("warning: MVEDSUA_UPDATE_TIMEOUT_MS=%s is not a number of "
           "milliseconds; using %llu",
           env, (unsigned long long)g_timeout_ms);
}

// A multi-version request forks here: the child (the follower) goes on to
// perform the update, the parent keeps the old version (runtime/mve).
bool TakeInFollower(const char *point) {
  if (mve::ForkUpdateFollower(g_request_path, point) == mve::kInFollower)
    return true;
  __atomic_store_n(&g_request, kIdle, __ATOMIC_RELEASE);
  return false;
}

// In place, every managed thread first stops at one of its update points.
void QuiesceAndUpdate(const char *point) {
  std::string reason;
  if (QuiesceThreads(&reason) < 0) {
    BeginStatus(point);
    return Fail(reason);
  }
  PerformUpdate(point);
}

} // namespace

void AnnounceCurrentVersion() {
  AnnounceVersion(g_current, VersionDisplayPath(g_current));
}

int RequestUpdate(const char *path, int source) {
  return RequestUpdateMode(path, source, kUpdateInPlace);
}

int RequestUpdateMode(const char *path, int source, int mode) {
  if (!path || !*path) {
    errno = EINVAL;
    return -1;
  }
  if (!__atomic_load_n(&g_driver_ready, __ATOMIC_ACQUIRE)) {
    errno = ENOTCONN; // not started by mvedsua_rt_run_main: nowhere to migrate
    return -1;
  }
  if (strlen(path) >= sizeof g_request_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  if (mve::MultiVersionBusy()) {
    errno = EBUSY; // no update of either process while one follows the other
    return -1;
  }
  if (access(path, F_OK) != 0)
    return -1; // errno from access: ENOENT, EACCES...
  int idle = kIdle;
  if (!__atomic_compare_exchange_n(&g_request, &idle, kClaimed, false,
                                   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    errno = EBUSY;
    return -1;
  }
  memcpy(g_request_path, path, strlen(path) + 1);
  g_request_source = source;
  g_request_mode = mode;
  __atomic_store_n(&g_request, kPending, __ATOMIC_RELEASE);
  __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELEASE);
  return 0;
}

void HandleUpdatePoint(const char *name) {
  if (__atomic_load_n(&g_updating, __ATOMIC_ACQUIRE))
    return OnPointWhileUpdating(name);
  // Control can only migrate from the thread that runs main (the driver's
  // frame is on its stack); other threads leave the request to it, and stop
  // here once it quiesces them (Threads.cpp).
  if (!g_driver_ready || !pthread_equal(pthread_self(), g_driver_thread)) {
    ThreadAtPoint(name);
    // With a driver, the flag is its to clear: the supervisor's request is
    // read only at the driver's point (g_request is idle until then), so a
    // busy thread passing its own point would hide the request from it.
    if (!g_driver_ready && __atomic_load_n(&g_request, __ATOMIC_ACQUIRE) == kIdle)
      __atomic_store_n(&__mvedsua_update_pending, 0, __ATOMIC_RELAXED);
    return;
  }
  // Clear the flag before looking at the request: one that arrives after
  // the look sets it again.
  __atomic_store_n(&__mvedsua_update_pending, 0, __ATOMIC_RELEASE);
  if (g_poll_hook)
    g_poll_hook();
  int pending = kPending;
  if (!__atomic_compare_exchange_n(&g_request, &pending, kTaken, false,
                                   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    return;
  if (g_request_mode == kUpdateInPlace)
    return QuiesceAndUpdate(name ? name : "");
  if (TakeInFollower(name ? name : ""))
    PerformUpdate(name ? name : "");
}

int IsUpdating() { return __atomic_load_n(&g_updating, __ATOMIC_ACQUIRE); }

const char *UpdatingFrom() {
  if (ThreadSlot() > 0)
    return ThreadUpdatingFrom();
  return IsUpdating() ? g_from_point : nullptr;
}

int CurrentVersion() { return g_current; }

int PreviousVersion() { return g_previous; }

const char *VersionDisplayPath(int v) {
  if (v < 0 || v >= VersionCount())
    return "";
  return g_display[v] ? g_display[v] : GetVersion(v)->path;
}

int RunVersions(int version, mvedsua_rt_main_fn main, int argc, char **argv) {
  g_current = version;
  g_main = main;
  g_argc = argc;
  g_pristine_argv = CopyArgv(argc, argv);
  g_driver_thread = pthread_self();
  SetDriverThread();
  ReadTimeout();
  g_args = argv;
  // Globals only from here: locals of this frame are unreliable after longjmp.
  if (sigsetjmp(g_driver, 1) != 0) {
    // An update migrated control here. The previous argv copies are never
    // freed: migrated state may point into them.
    g_args = CopyArgv(g_argc, g_pristine_argv);
    RunPrestartHook();
  }
  __atomic_store_n(&g_driver_ready, true, __ATOMIC_RELEASE);
  return g_main(g_argc, g_args, environ);
}

void SetUpdateResultHook(UpdateResultHook hook) { g_hook = hook; }

void SetUpdatePollHook(UpdatePollHook hook) { g_poll_hook = hook; }

void SetUpdateTimeout(uint64_t ms) { g_timeout_ms = ms; }

void FormatUpdateMessage(const mvedsua_rt_update_status *s, char *buf,
                         size_t size) {
  if (s->state == MVEDSUA_RT_UPDATE_FINISHED)
    snprintf(buf, size, "update-done %s %s %llu %llu %llu %llu %s", s->from_id,
             s->to_id, (unsigned long long)s->pause_us,
             (unsigned long long)s->entries, (unsigned long long)s->bytes,
             (unsigned long long)s->remapped, s->to_path);
  else
    snprintf(buf, size, "update-failed %s", s->reason);
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT void mvedsua_rt_last_update(struct mvedsua_rt_update_status *out) {
  *out = g_status;
  if (out->state == MVEDSUA_RT_UPDATE_NONE)
    SetText(out->outcome, sizeof out->outcome, "none");
}
