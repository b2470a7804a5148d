// Follower.cpp: multi-version updates (Follower.h, docs/mve.md).
//
// Life of one update, by process:
//   leader (the parent)                      follower (the child)
//   update point takes the request, forks -> in the same update point:
//   abort callbacks, starts recording,       pass-through (the update's own
//   returns at once: serves the old version  syscalls are local), performs the
//   checks the follower at appends and       update with the in-place engine;
//   update points; reaps it (or, under the   at the new version's update point
//   supervisor, its parent since the clone,
//   sees it end on a pidfd) and reports
//   when it is gone                          replays the log from the fork
//                                            (catching-up), then follows live
//                                            (outdated-leader)
// The two share the log's user area: the divergence report at its start,
// then FollowerShared (stage, outcome, crash report), written by the
// follower and read by the leader, so the leader never has to ask.
#include "Follower.h"
#include "Children.h"
#include "../Runtime.h"
#include "../ToolApi.h"
#include "EpollMap.h"
#include "Handover.h"
#include "Log.h"
#include "Raw.h"
#include "Rules.h"
#include "../Threads.h"
#include "Shim.h"
#include "Signals.h"
#include "Sud.h"
#include "UpdateGuard.h"
#include "mvedsua/rules_abi.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <initializer_list>

// The struct shares its name with the function that fills it.
typedef struct mvedsua_rt_mve_status MveStatus;

namespace mvedsua {
namespace mve {
namespace {

// ---- what the follower tells the leader -----------------------------------

enum Outcome : uint32_t {
  kNoOutcome = 0,
  kUpdateFailed,
  kCrashed,
  kAborted, // it could not go on (the descriptor hand-over failed): `reason`
};

struct FollowerShared {
  uint32_t stage;   // Stage, advanced by the follower
  uint32_t outcome; // Outcome, set once just before the follower ends
  int32_t signal;
  uint32_t stage_at_crash;
  uint64_t fault_addr;
  uint64_t record; // records replayed when it crashed
  uint64_t updated_us, caught_up_us; // wall clock
  uint32_t exit_noted; // the follower exits on its own with exit_code
  int32_t exit_code;
  char reason[1024];   // why the update failed
  char backtrace[3072]; // where it crashed, or where it diverged
  uint32_t stack_taken; // a thread that diverged wrote `backtrace`
  // Written by the log's writer (the leader) for its follower, which may
  // then take over: it crashed, or it yields (a rollback after promotion).
  uint32_t leader_crashed, yielded;
  int32_t leader_signal;
  uint64_t leader_fault_addr;
  char leader_backtrace[1024];
  uint32_t hold; // the leader's threads wait after their next record
  // Promotion with threads: lane 0's switch record is in the log, and the
  // channel it hands over (FollowerLaneSwitchToLeader).
  uint32_t switch_posted;
  int32_t switch_channel;
};
constexpr size_t kSharedOffset = 2048; // after the DivergenceReport
static_assert(sizeof(DivergenceReport) <= kSharedOffset, "report overlaps");
static_assert(kSharedOffset + sizeof(FollowerShared) <= kLogUserAreaSize,
              "the log's user area is too small");

// Caught up: the backlog is down to what one burst of records takes.
constexpr uint64_t kCaughtUpBytes = 16 << 10;

FollowerShared *Shared() {
  return reinterpret_cast<FollowerShared *>(
      static_cast<char *>(LogUserArea(ShimLog())) + kSharedOffset);
}

uint32_t LoadU32(const uint32_t *p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
void StoreU32(uint32_t *p, uint32_t v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

// Raw clocks: the interposed clock_gettime would be recorded or replayed.
uint64_t ClockUs(long clock) {
  struct timespec ts;
  RawSyscall(SYS_clock_gettime, clock, long(&ts));
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}
uint64_t MonoMs() { return ClockUs(CLOCK_MONOTONIC) / 1000; }
uint64_t WallUs() { return ClockUs(CLOCK_REALTIME); }
int OwnPid() { return int(RawSyscall(SYS_getpid)); }

void SleepMsRaw(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  RawSyscall(SYS_nanosleep, long(&ts), 0);
}

void RequestLook() {
  __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELEASE);
}

// Promotion, finish and takeovers (below).
extern uint64_t g_table_tried_ms, g_table_retry_ms;
void EndUpdate();
void SendTableWhenCaughtUp();
int TakeRequests(int mode);
void InstallLeaderCrashHandlers();
void Yield(const char *why);
void ReportPending();

// ---- the request ------------------------------------------------------------

struct Request {
  uint64_t timeout_ms = 30000;
  LogOptions log;
  char path[kMaxPath];
  char status_file[kMaxPath]; // MVEDSUA_MVE_STATUS: one JSON line per change
  int source;                 // UpdateSource, for the retries
  uint64_t retries_left, retry_delay_ms;
  uint64_t retry_at_ms;       // a retry is due then; 0: none
  // This attempt replays every thread's calls in the leader's order: the
  // retry of one whose threads diverged unordered (OrderedRetryWanted).
  bool ordered;
};
Request g_req;

void SetOptions(const mvedsua_rt_mve_options *o) {
  g_req.log = LogOptionsFromEnv();
  const char *t = getenv("MVEDSUA_UPDATE_TIMEOUT_MS");
  g_req.timeout_ms = t && *t ? strtoull(t, nullptr, 10) : 30000;
  if (o && o->timeout_ms)
    g_req.timeout_ms = o->timeout_ms;
  if (o && o->log_bound)
    g_req.log.bound = o->log_bound;
  if (o && o->log_chunk)
    g_req.log.chunk_size = o->log_chunk;
  g_req.retries_left = o ? o->retries : 0;
  g_req.retry_delay_ms = o && o->retry_delay_ms ? o->retry_delay_ms : 500;
  g_req.retry_at_ms = 0;
  g_req.ordered = false;
  const char *s = getenv("MVEDSUA_MVE_STATUS");
  snprintf(g_req.status_file, sizeof g_req.status_file, "%s", s ? s : "");
}

// ---- the leader's side --------------------------------------------------------

struct Leader {
  bool active;       // a follower of an update exists or is not yet reported
  bool lead_pending; // forked in this update point: record once it returns
  bool lost;         // the shim stopped recording
  bool reaped;
  int wait_status;   // -1: someone else reaped it
  int pid;
  int pidfd = -1;    // a CLONE_PARENT follower's (not our child); else -1
  uint32_t stage_seen, stage_reported;
  uint64_t started_ms, progress_ms, consumed_seen;
  char killed[2048]; // why the leader killed it; "" otherwise
  bool requested;   // killed by mvedsua_rt_mve_rollback
  bool finished;    // killed by mvedsua_rt_mve_finish: the update is done
};
Leader g_leader;
MveStatus g_status;
// This process runs the new version and leads: promoted, its follower (if
// any) is the old version.
bool g_promoted;
// Follower with threads: a thread made the process lead at the switch of a
// promotion (FollowerLaneSwitchToLeader); g_switch_claim is its id.
bool g_lanes_switched;
pid_t g_switch_claim;
// Requests taken at the leader's next update point.
bool g_promote_wanted, g_finish_wanted;
// What happened outside an update point (at a switch or a takeover, maybe in
// the SIGSYS handler), reported at the next one.
enum Pending : uint32_t { kNothing = 0, kSwitched, kTookOver };
uint32_t g_pending;
char g_pending_reason[1400];

void Kill(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void Kill(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_leader.killed, sizeof g_leader.killed, fmt, ap);
  va_end(ap);
  RawSyscall(SYS_kill, g_leader.pid, SIGKILL);
  ShimCloseReaders();
  ShimStopLeading();
}

// The follower's own deadline to finish its update, then to keep consuming
// records while some are pending. A follower that hangs never reaches an
// update point, so only the leader can enforce either.
void CheckTimeLimits(uint32_t stage) {
  uint64_t now = MonoMs(), limit = g_req.timeout_ms;
  if (!limit)
    return;
  if (stage == kUpdating) {
    if (now - g_leader.started_ms > limit)
      Kill("it did not finish its update within %llu ms",
           (unsigned long long)limit);
    return;
  }
  LogStats st;
  ShimLogStats(&st);
  if (st.records_consumed != g_leader.consumed_seen || !st.backlog_bytes) {
    g_leader.consumed_seen = st.records_consumed;
    g_leader.progress_ms = now;
  } else if (now > g_leader.progress_ms && now - g_leader.progress_ms > limit) {
    Kill("it consumed no record for %llu ms with %llu bytes of log pending "
         "(at record %llu)",
         (unsigned long long)limit, (unsigned long long)st.backlog_bytes,
         (unsigned long long)st.records_consumed);
  }
}

// One thread at a time looks at the follower: every thread of a leader with
// threads ticks from its own appends (LeaderTick), and two looks at once
// raced on g_leader (a look that read the clock, then saw another's later
// progress time, computed a negative wait as 2^64 ms and killed a follower
// that was consuming: "consumed no record for 30000 ms"). A look that finds
// another under way is skipped; the next tick makes it. A flag, not a mutex:
// ticks run on the append path, which may be in a signal handler.
int g_looking;

bool TryLook() { return !__atomic_exchange_n(&g_looking, 1, __ATOMIC_ACQUIRE); }
void EndLook() { __atomic_store_n(&g_looking, 0, __ATOMIC_RELEASE); }

void CheckLocked();

void Check() {
  if (!TryLook())
    return;
  CheckLocked();
  EndLook();
}

void CheckLocked() {
  if (!g_leader.active)
    return;
  // Read even once the follower is gone: the stages it passed through
  // between two looks are still reported, before how it ended.
  uint32_t stage = LoadU32(&Shared()->stage);
  if (stage != g_leader.stage_seen) {
    g_leader.stage_seen = stage;
    g_leader.progress_ms = MonoMs();
    RequestLook(); // reported at the next update point
  }
  if (g_leader.reaped || g_leader.lost)
    return;
  // A child's follower that diverged: the new version's code behaves
  // differently there too, and the whole update goes.
  char child[sizeof g_leader.killed];
  if (ChildDiverged(child, sizeof child))
    return Kill("%s", child);
  int st = 0;
  long r = WaitFollower(g_leader.pid, &st, WNOHANG);
  if (r == g_leader.pid || r == -ECHILD) {
    g_leader.reaped = true;
    g_leader.wait_status = r == g_leader.pid ? st : -1;
    ShimStopLeading();
    return;
  }
  CheckTimeLimits(stage);
}

const char *SignalName(int sig) {
  const char *n = sigabbrev_np(sig);
  return n ? n : "?";
}

} // namespace

int FormatReportWithStack(char *out, size_t size, const char *head,
                          const char *text, const char *stack) {
  size_t len = strlen(text);
  return snprintf(out, size, "%s%s%s%s%s", head, text,
                  *stack && len && text[len - 1] != '\n' ? "\n" : "",
                  *stack ? "the follower's stack:\n" : "", stack);
}

namespace {

int Describe(char *out, size_t size, int status) {
  int pid = g_leader.pid;
  if (g_leader.finished)
    return snprintf(out, size, "the old version (follower %d) ended: %s", pid,
                    g_leader.killed);
  const FollowerShared *fs = Shared();
  const DivergenceReport *d = ShimDivergence();
  if (g_leader.killed[0])
    return snprintf(out, size, "follower %d killed: %s", pid, g_leader.killed);
  if (d && __atomic_load_n(&d->kind, __ATOMIC_ACQUIRE)) {
    char head[64];
    snprintf(head, sizeof head, "follower %d %s: ", pid,
             d->kind == kDivRule ? "stopped" : "diverged");
    return FormatReportWithStack(
        out, size, head, d->text,
        LoadU32(&fs->stack_taken) == 1 ? fs->backtrace : "");
  }
  uint32_t outcome = LoadU32(&fs->outcome);
  if (outcome == kUpdateFailed)
    return snprintf(out, size, "the update failed in follower %d: %s", pid,
                    fs->reason);
  if (outcome == kAborted)
    return snprintf(out, size, "follower %d stopped: %s", pid, fs->reason);
  if (outcome == kCrashed)
    return snprintf(out, size,
                    "follower %d crashed: signal %d (SIG%s), faulting address "
                    "0x%llx, stage %s, after %llu records replayed\n%s",
                    pid, fs->signal, SignalName(fs->signal),
                    (unsigned long long)fs->fault_addr,
                    StageName(fs->stage_at_crash),
                    (unsigned long long)fs->record, fs->backtrace);
  if (LogGetState(ShimLog()) == kLogAbandoned)
    return snprintf(out, size, "follower %d abandoned: the log reached its "
                    "bound", pid);
  if (status == -1 && g_leader.pidfd >= 0)
    return snprintf(out, size, "follower %d killed by a signal (it wrote no "
                    "report; the supervisor, its parent, reaped it)", pid);
  if (status == -1)
    return snprintf(out, size, "follower %d ended (reaped by the program)",
                    pid);
  if (WIFSIGNALED(status))
    return snprintf(out, size, "follower %d killed by signal %d (SIG%s)", pid,
                    WTERMSIG(status), SignalName(WTERMSIG(status)));
  return snprintf(out, size, "follower %d exited with status %d", pid,
                  WEXITSTATUS(status));
}

// ---- status -------------------------------------------------------------------

void JsonString(char *out, size_t size, int *n, const char *s) {
  *n += snprintf(out + *n, size - *n, "\"");
  for (; *s && *n < int(size) - 8; ++s) {
    unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\')
      *n += snprintf(out + *n, size - *n, "\\%c", c);
    else if (c < 32)
      *n += snprintf(out + *n, size - *n, "\\u%04x", c);
    else
      out[(*n)++] = char(c);
  }
  *n += snprintf(out + *n, size - *n, "\"");
}

void Refresh(MveStatus *s) {
  if (!g_leader.active || !ShimLog())
    return;
  LogStats st;
  ShimLogStats(&st);
  s->backlog_bytes = st.backlog_bytes;
  s->backlog_records = st.records_appended - st.records_consumed;
  // The log samples its peak only when it takes a chunk; the leader's looks
  // (every few appends, each update point) refine it.
  uint64_t peak = st.peak_backlog_bytes > st.backlog_bytes
                      ? st.peak_backlog_bytes : st.backlog_bytes;
  if (peak > s->peak_backlog_bytes)
    s->peak_backlog_bytes = peak;
  s->records_appended = st.records_appended;
  s->records_consumed = st.records_consumed;
  s->order_timeouts = st.order_timeouts;
}

MveStageHook g_stage_hook;

void WriteStatusFile() {
  if (!g_req.status_file[0])
    return;
  static char line[12288];
  const MveStatus &s = g_status;
  int n = snprintf(line, sizeof line,
                   "{\"stage\": \"%s\", \"leader_pid\": %d, \"follower_pid\": %d, "
                   "\"backlog_bytes\": %llu, \"backlog_records\": %llu, "
                   "\"peak_backlog_bytes\": %llu, \"outcome\": \"%s\", \"reason\": ",
                   s.stage, s.leader_pid, s.follower_pid,
                   (unsigned long long)s.backlog_bytes,
                   (unsigned long long)s.backlog_records,
                   (unsigned long long)s.peak_backlog_bytes, s.outcome);
  JsonString(line, sizeof line - 2, &n, s.reason);
  n += snprintf(line + n, sizeof line - n,
                ", \"records_appended\": %llu, \"records_consumed\": %llu, "
                "\"started_us\": %llu, \"updated_us\": %llu, "
                "\"caught_up_us\": %llu, \"ended_us\": %llu}\n",
                (unsigned long long)s.records_appended,
                (unsigned long long)s.records_consumed,
                (unsigned long long)s.started_us,
                (unsigned long long)s.updated_us,
                (unsigned long long)s.caught_up_us,
                (unsigned long long)s.ended_us);
  long fd = RawSyscall(SYS_openat, AT_FDCWD, long(g_req.status_file),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  RawWriteAll(int(fd), line, uint64_t(n < int(sizeof line) ? n : sizeof line - 1));
  RawSyscall(SYS_close, fd);
}

// Each change of stage or outcome, in the leader, at an update point or at
// its exit (never while recording): to the supervisor's hook and the file.
void Publish() {
  if (g_leader.stage_reported != kSingleLeader) // the log is being freed
    Refresh(&g_status);
  if (g_stage_hook)
    g_stage_hook(&g_status);
  WriteStatusFile();
}

void SetStage(uint32_t stage) {
  snprintf(g_status.stage, sizeof g_status.stage, "%s", StageName(stage));
  g_leader.stage_reported = stage;
}

void ReportOneStage(uint32_t stage) {
  const FollowerShared *fs = Shared();
  SetStage(stage);
  g_status.updated_us = fs->updated_us;
  g_status.caught_up_us = fs->caught_up_us;
  Refresh(&g_status);
  if (stage == kCatchingUp)
    Report("multi-version update: follower %d runs %s and replays the log "
           "(stage catching-up, %llu bytes pending)",
           g_leader.pid, g_req.path,
           (unsigned long long)g_status.backlog_bytes);
  else if (stage == kOutdatedLeader)
    Report("multi-version update: follower %d caught up (stage "
           "outdated-leader, %llu records replayed, peak backlog %llu bytes)",
           g_leader.pid, (unsigned long long)g_status.records_consumed,
           (unsigned long long)g_status.peak_backlog_bytes);
  Publish();
}

// The log's figures for the supervisor's status between stage changes: at
// most every kRefreshMs, at the update points the supervisor's wake-ups
// (every 200 ms while a follower exists) make the leader reach.
constexpr uint64_t kRefreshMs = 200;
uint64_t g_refreshed_ms;

void RefreshSupervisor() {
  uint64_t now = MonoMs();
  if (now - g_refreshed_ms < kRefreshMs)
    return;
  g_refreshed_ms = now;
  Refresh(&g_status);
  if (g_stage_hook) // not the status file: one line per change there
    g_stage_hook(&g_status);
}

// At an update point: say what changed since the last one, each stage
// passed through once.
void ReportStage() {
  while (g_leader.stage_reported < g_leader.stage_seen)
    ReportOneStage(g_leader.stage_reported + 1);
}

// The follower is reaped: say how it ended and go on alone.
// A rollback that may not happen again: MVEDSUa retried after divergences,
// crashes and timing bugs; a refused or failed update fails alike each
// time, and an operator's rollback is final.
bool Retriable() {
  return !g_leader.requested && LoadU32(&Shared()->outcome) != kUpdateFailed;
}

void ScheduleRetry() {
  if (!g_req.retries_left || !Retriable())
    return;
  g_req.retries_left--;
  g_req.retry_at_ms = MonoMs() + g_req.retry_delay_ms;
  Report("multi-version update to %s: retrying in %llu ms (%llu more "
         "retries after this one)%s",
         g_req.path, (unsigned long long)g_req.retry_delay_ms,
         (unsigned long long)g_req.retries_left,
         g_req.ordered ? ", every thread's calls replayed in the leader's order"
                       : "");
  RequestLook();
}

// At an update point with no follower: a retry that is due is requested
// again (taken at the next update point); one not due yet keeps the update
// points looking.
void RetryIfDue() {
  if (!g_req.retry_at_ms)
    return;
  if (MonoMs() < g_req.retry_at_ms)
    return RequestLook();
  g_req.retry_at_ms = 0;
  if (RequestUpdateMode(g_req.path, g_req.source, kUpdateMultiVersion) != 0)
    Report("multi-version update to %s: the retry was refused: %s",
           g_req.path, strerror(errno));
}

// A follower with threads replays each thread's calls at its own pace when
// MVEDSUA_MVE_ORDER_LANES=0 turned their order off: memory that threads
// share between their calls (a counter, a cache) may then be read in
// another order than in the leader, and the same code sends other bytes. So
// the retry (--retry) of an update whose follower with threads diverged so
// replays the threads' calls in the leader's order (Shim.h, RecHead.order):
// a divergence that came of that order does not come again. (Never a retry of its own: the request that showed a real
// difference may not come again while a retry follows.)
const char kOrderedRetryNote[] =
    "; the retry replays every thread's calls in the leader's order";
bool OrderedRetryWanted() {
  const DivergenceReport *d = ShimDivergence();
  if (g_promoted || !g_req.retries_left || !Retriable() ||
      ShimLaneCount() <= 1 || ShimOrdersAllCalls() || !d)
    return false;
  switch (__atomic_load_n(&d->kind, __ATOMIC_ACQUIRE)) {
  case kDivCall: case kDivArgument: case kDivBytes: case kDivLength:
  case kDivExtra:
    return true;
  default:
    return false;
  }
}

void Conclude() {
  Refresh(&g_status);
  Describe(g_status.reason, sizeof g_status.reason, g_leader.wait_status);
  bool ordered_retry = OrderedRetryWanted();
  if (ordered_retry) {
    size_t n = strlen(g_status.reason);
    while (n && g_status.reason[n - 1] == '\n')
      g_status.reason[--n] = 0;
    snprintf(g_status.reason + n, sizeof g_status.reason - n, "%s",
             kOrderedRetryNote);
  }
  SetStage(kSingleLeader);
  g_status.follower_pid = 0;
  g_status.backlog_bytes = g_status.backlog_records = 0; // the log is freed
  g_status.ended_us = WallUs();
  snprintf(g_status.outcome, sizeof g_status.outcome, "%s",
           g_promoted ? "finished" : "rolled-back");
  if (g_promoted)
    Report("multi-version update to %s finished: %s; the new version (pid %d) "
           "goes on alone",
           g_req.path, g_status.reason, g_status.leader_pid);
  else
    Report("multi-version update to %s rolled back: %s; the leader (pid %d) "
           "goes on alone with the old version",
           g_req.path, g_status.reason, g_status.leader_pid);
  Publish();
  g_req.ordered = g_req.ordered || ordered_retry;
  if (!g_promoted)
    ScheduleRetry(); // before the shared area goes with the log
  EndUpdate();
}

// At the end of the leader's update point. Returns the mode to go on in.
int LeaderAtPoint(int mode) {
  if (g_leader.lead_pending) {
    g_leader.lead_pending = false;
    ShimLead(g_leader.pid);
    ReleaseThreads(); // the threads parked for the fork record their lanes
    return kLeader;
  }
  Check();
  if (!g_leader.lost && !g_leader.reaped)
    SendTableWhenCaughtUp();
  if (g_promote_wanted || g_finish_wanted) {
    ReportStage();
    int next = TakeRequests(mode);
    if (next != mode)
      return next;
  }
  ReportStage();
  if (!g_leader.lost && !g_leader.reaped) {
    RefreshSupervisor();
    return mode;
  }
  if (!g_leader.reaped) {
    int st = 0;
    long r = WaitFollower(g_leader.pid, &st, WNOHANG);
    if (r == 0) {
      RequestLook(); // it is on its way out: look again at the next point
      return kOff;
    }
    g_leader.reaped = true;
    g_leader.wait_status = r == g_leader.pid ? st : -1;
  }
  Conclude();
  return kOff;
}

void BecomeLeader(int pid, int pidfd, const char *point) {
  RunAbortCallbacks(); // before recording: the follower never makes them
  HandoverKeepEnd(true);
  InstallLeaderCrashHandlers();
  g_leader = Leader();
  g_leader.active = g_leader.lead_pending = true;
  g_table_tried_ms = g_table_retry_ms = 0;
  g_leader.pid = pid;
  g_leader.pidfd = pidfd;
  g_leader.started_ms = MonoMs();
  g_leader.stage_seen = kUpdating;
  memset(&g_status, 0, sizeof g_status);
  SetStage(kUpdating);
  g_status.leader_pid = OwnPid();
  g_status.follower_pid = pid;
  g_status.started_us = WallUs();
  snprintf(g_status.outcome, sizeof g_status.outcome, "in-progress");
  snprintf(g_status.to_path, sizeof g_status.to_path, "%s", g_req.path);
  Report("multi-version update to %s: follower %d forked at update point "
         "'%s'; the leader goes on with the old version (stage updating)",
         g_req.path, pid, point);
  Publish();
}

// ---- the follower's side ------------------------------------------------------

bool g_is_follower;     // this process follows (forked for an update, or the
                        // old version following the promoted one)
bool g_runs_old;        // the old version following the new one
bool g_follow_pending;  // the update finished: replay once the point returns
int g_leader_pid;
int g_leader_pidfd = -1; // a CLONE_PARENT follower's view of its leader
char g_altstack[1 << 16];

// Async-signal-safe text for the crash handler: no stdio, no malloc.
struct Text {
  char *out;
  size_t size, n;
  void Add(const char *s) {
    while (*s && n + 1 < size)
      out[n++] = *s++;
    out[n] = 0;
  }
  void Num(uint64_t v, int base) {
    char digits[24];
    int k = 0;
    do
      digits[k++] = "0123456789abcdef"[v % base];
    while ((v /= base) && k < 24);
    while (k && n + 1 < size)
      out[n++] = digits[--k];
    out[n] = 0;
  }
};

// Frames as "#i 0xADDR name+0xOFF (object)". backtrace() was called once
// when the follower started, so libgcc's unwinder is loaded already;
// dladdr's lock is recursive. (With threads, a thread that diverges or
// crashes while another holds the loader's lock, in dlopen, waits for it.)
// `program_only`: the program's frames only, from the first below the
// runtime's own (the shim that found a divergence) to the next of the
// runtime's (mvedsua_rt_run_main, a thread's start), renumbered from 0.
void FormatBacktrace(char *out, size_t size, bool program_only = false) {
  void *frames[48];
  int n = backtrace(frames, 48);
  Text t = {out, size, 0};
  if (size)
    out[0] = 0;
  Dl_info self = {};
  dladdr(reinterpret_cast<void *>(&FormatBacktrace), &self);
  int shown = 0;
  for (int i = 1; i < n; ++i) {
    Dl_info di = {};
    if (program_only) {
      bool runtime = dladdr(frames[i], &di) && di.dli_fbase == self.dli_fbase;
      if (runtime && shown)
        break;
      if (runtime)
        continue;
    }
    t.Add("  #");
    t.Num(uint64_t(program_only ? shown++ : i - 1), 10);
    t.Add(" 0x");
    t.Num(uint64_t(frames[i]), 16);
    if (dladdr(frames[i], &di) && di.dli_sname) {
      t.Add(" ");
      t.Add(di.dli_sname);
      t.Add("+0x");
      t.Num(uint64_t(frames[i]) - uint64_t(di.dli_saddr), 16);
    }
    if (di.dli_fname) {
      const char *base = strrchr(di.dli_fname, '/');
      t.Add(" (");
      t.Add(base ? base + 1 : di.dli_fname);
      t.Add(")");
    }
    t.Add("\n");
  }
}

// A fatal signal in the follower (in the transformer, the new version's
// code, anywhere): the report goes to the shared area for the leader, the
// log is closed so the leader stops recording at its next append, and the
// signal is raised again with its default action (SA_RESETHAND).
void OnLeaderFatal(int sig, siginfo_t *si, void *);

// A takeover stops a diverging threaded leader (TakeOverAllowed): a
// follower that ends meanwhile lets it go on.
int g_stopped_leader;
void ReleaseStoppedLeader() {
  if (!__atomic_exchange_n(&g_stopped_leader, 0, __ATOMIC_ACQ_REL))
    return;
  StoreU32(&Shared()->hold, 0);
  RawSyscall(SYS_kill, g_leader_pid, SIGCONT);
}

void OnFatal(int sig, siginfo_t *si, void *ctx) {
  // The follower came to lead (promoted, took over); a child's follower
  // (Children.h) reports like the update's.
  if (!g_is_follower && !ShimFollowsChild())
    return OnLeaderFatal(sig, si, ctx);
  __atomic_store_n(&g_mode, kOff, __ATOMIC_RELAXED);
  SudAllow(); // nothing below may trap and replay
  FollowerShared *fs = Shared();
  fs->signal = sig;
  fs->fault_addr = uint64_t(si->si_addr);
  fs->record = ShimSeq();
  fs->stage_at_crash = LoadU32(&fs->stage);
  FormatBacktrace(fs->backtrace, sizeof fs->backtrace);
  StoreU32(&fs->outcome, kCrashed);
  LogCloseReader(ShimLog());
  ReleaseStoppedLeader();
  RawSyscall(SYS_tgkill, RawSyscall(SYS_getpid), RawSyscall(SYS_gettid), sig);
}

} // namespace

const char *FollowerNoteStack() {
  if (!ShimLog())
    return "";
  FollowerShared *fs = Shared();
  uint32_t none = 0;
  if (!__atomic_compare_exchange_n(&fs->stack_taken, &none, 2, false,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return ""; // another thread's divergence has it
  FormatBacktrace(fs->backtrace, sizeof fs->backtrace, true);
  StoreU32(&fs->stack_taken, 1);
  return fs->backtrace;
}

namespace {

void InstallCrashHandlers() {
  stack_t ss = {};
  ss.ss_sp = g_altstack;
  ss.ss_size = sizeof g_altstack;
  sigaltstack(&ss, nullptr); // a stack overflow is reported too
  void *warm[2];
  backtrace(warm, 2);
  struct sigaction sa = {};
  sa.sa_sigaction = OnFatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigfillset(&sa.sa_mask);
  for (int sig : {MVEDSUA_FATAL_SIGNALS})
    sigaction(sig, &sa, nullptr);
}

// The engine's outcome in the follower.
void OnFollowerResult(const mvedsua_rt_update_status *s) {
  if (s->state == MVEDSUA_RT_UPDATE_FINISHED) {
    g_follow_pending = true; // replay from the end of this update point
    return;
  }
  FollowerFailUpdate(s->reason);
}

// The follower must not speak on the leader's channel to the supervisor (its
// "hello" would read as the program's), nor keep the channel open after the
// leader is gone: its copy of the descriptor now points at /dev/null.
int g_hidden_channel = -1;

void LeaveSupervisorChannel() {
  SetUpdatePollHook(nullptr);
  int fd = SupervisorFd();
  if (fd < 0)
    return;
  // A copy above the program's numbers, for the day this process leads
  // (promoted, or taking over from a leader that crashed).
  long copy = RawSyscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
  if (copy >= 0)
    g_hidden_channel = MoveFdHigh(int(copy));
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    dup3(null, fd, O_CLOEXEC);
    close(null);
  }
}

// Calls f(tid) for each thread of process `pid` (0: this one), read from
// /proc/PID/task with raw calls (the leader may be recording, or in a
// signal handler; no allocation), until f returns true; whether it did.
template <class F> bool AnyThread(F f, int pid = 0) {
  char path[48] = "/proc/self/task";
  if (pid)
    snprintf(path, sizeof path, "/proc/%d/task", pid);
  long dir = RawSyscall(SYS_openat, AT_FDCWD, long(path),
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return false;
  alignas(8) char ents[4096];
  bool found = false;
  long n;
  while (!found && (n = RawSyscall(SYS_getdents64, dir, long(ents),
                                   sizeof ents)) > 0) {
    for (long off = 0; !found && off < n;) {
      auto *e = reinterpret_cast<struct dirent64 *>(ents + off);
      off += e->d_reclen;
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
        found = f(e->d_name);
    }
  }
  RawSyscall(SYS_close, dir);
  return found;
}

// A follower runs its threads under SCHED_BATCH: its wake-ups (each batch
// of records) then never preempt the leader, which serves the clients, and
// the leader's wake-ups preempt it. On two cores shared with the clients
// this is what kept a 1M-key update's follower (a second of transformation,
// then the replay) out of the clients' latency. Back to SCHED_OTHER when it
// comes to lead. Only threads under SCHED_OTHER are moved (a program that
// chose a policy keeps it); the policy is per thread and new threads inherit
// it. Raw calls: it may be recording or replaying. MVEDSUA_MVE_FOLLOWER_BATCH=0
// turns it off.
int g_batch_env = -1;
bool g_batched;
void FollowerYieldsCpu(bool yield) {
  if (yield == g_batched || !EnvOn("MVEDSUA_MVE_FOLLOWER_BATCH", &g_batch_env))
    return;
  long from = yield ? SCHED_OTHER : SCHED_BATCH;
  long to = yield ? SCHED_BATCH : SCHED_OTHER;
  struct sched_param param = {};
  AnyThread([&](const char *name) {
    long tid = strtol(name, nullptr, 10);
    if (RawSyscall(SYS_sched_getscheduler, tid) == from)
      RawSyscall(SYS_sched_setscheduler, tid, to, long(&param));
    return false;
  });
  g_batched = yield;
}

void BecomeFollower(int leader, bool cloned) {
  g_is_follower = true;
  FollowerYieldsCpu(true);
  HandoverKeepEnd(false);
  HandoverNoteInherited(); // before the update opens anything
  GuardInheritedEpolls();  // ... or changes what it shares with the leader
  g_leader_pid = leader;
  if (cloned) { // not the leader's child: getppid() cannot tell
    long fd = RawSyscall(SYS_pidfd_open, leader, 0);
    g_leader_pidfd = fd >= 0 ? MoveFdHigh(int(fd)) : kNoLeaderPidfd;
    // The supervisor's child, like the leader, which it started with a
    // parent-death signal; a clone does not inherit that. A follower that
    // comes to lead must not outlive the supervisor either.
    RawSyscall(SYS_prctl, PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (RawSyscall(SYS_getppid) == 1) // it died before the prctl
      RawSyscall(SYS_exit_group, MVEDSUA_MVE_EXIT_LEADER_GONE);
  }
  InstallCrashHandlers();
  LeaveSupervisorChannel();
  ThreadsForkedChild(); // the managed threads are relaunched here
  SetUpdateResultHook(OnFollowerResult);
  SetUpdateTimeout(g_req.timeout_ms);
}

void StartFollowing() {
  g_follow_pending = false;
  FollowerShared *fs = Shared();
  fs->updated_us = WallUs();
  Report("follower %d: the new version reached its update point; replaying "
         "the leader's log from the fork (%llu bytes pending)",
         OwnPid(), (unsigned long long)ShimBacklogBytes());
  StoreU32(&fs->stage, kCatchingUp);
  GuardEnd(); // replayed from here on: nothing reaches the kernel
  ShimFollow(g_leader_pid, g_leader_pidfd);
  ReleaseHeldThreads(); // each relaunched thread replays its lane from here
  // A leader with nothing to record yet leaves no record to check on.
  FollowerCheckCaughtUp();
}

// No follower could start: said like any other outcome (the supervisor
// waits for one).
int NotStarted(const char *why) {
  memset(&g_status, 0, sizeof g_status);
  SetStage(kSingleLeader);
  g_status.leader_pid = OwnPid();
  g_status.started_us = g_status.ended_us = WallUs();
  snprintf(g_status.outcome, sizeof g_status.outcome, "not-started");
  snprintf(g_status.reason, sizeof g_status.reason,
           "no follower was started: %s", why);
  snprintf(g_status.to_path, sizeof g_status.to_path, "%s", g_req.path);
  Report("multi-version update to %s refused: %s", g_req.path, why);
  Publish();
  return kForkFailed;
}

int CountThreads() {
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return 1;
  int n = 0;
  while (struct dirent *e = readdir(d))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// glibc keeps the thread's kernel TID in its TCB (struct pthread's `tid`,
// at this offset on x86-64 since 2.x; what raise(), pthread_kill and the
// owner of recursive mutexes such as dladdr's use). A raw clone leaves the
// leader's there; CLONE_CHILD_SETTID has the kernel write the child's. The
// offset is checked against gettid() before it is trusted.
#if defined(__x86_64__)
constexpr size_t kTcbTidOffset = 0x2d0;
#endif

pid_t *TcbTid() {
#if defined(__x86_64__)
  pid_t *tid = reinterpret_cast<pid_t *>(
      reinterpret_cast<char *>(pthread_self()) + kTcbTidOffset);
  if (*tid == pid_t(RawSyscall(SYS_gettid)))
    return tid;
#endif
  return nullptr;
}

// The follower. Under the supervisor: clone(CLONE_PARENT) makes it the
// supervisor's child, so the program's waitpid(-1) can neither reap it nor
// block on it; CLONE_PIDFD gives the leader a pidfd to see it end. What
// glibc's fork does besides the syscall matters little here: the process
// has one thread, outside malloc and stdio (their locks are free), the pid
// is not cached (glibc 2.25+), the TID in the TCB is set by the kernel
// (above). Not run: pthread_atfork handlers (none in the runtime; a
// program's would not run for its follower) and the robust-mutex list
// registration (a follower never holds a robust mutex at its end). Without
// a supervisor, or when any of this is unavailable: fork().
pid_t SpawnFollower(int *pidfd) {
  *pidfd = -1;
  pid_t *tid = SupervisorFd() >= 0 ? TcbTid() : nullptr;
  if (!tid)
    return fork();
  int fd = -1;
  long r = RawSyscall(SYS_clone,
                      CLONE_PARENT | CLONE_PIDFD | CLONE_CHILD_SETTID | SIGCHLD,
                      0, long(&fd), long(tid), 0);
  if (r == -EINVAL || r == -ENOSYS)
    return fork(); // a kernel without CLONE_PIDFD (5.2)
  if (r < 0) {
    errno = int(-r);
    return -1;
  }
  if (r == 0) {
    *pidfd = 0; // tells the caller it was cloned
    return 0;
  }
  *pidfd = MoveFdHigh(fd);
  return pid_t(r);
}


// ---- promotion, finish and takeovers -------------------------------------------
//
// Promotion swaps the roles at a record boundary: the leader (at an update
// point, with the log drained) hands over the supervisor channel, appends
// the switch record and follows the other log; the follower, reading the
// switch record inside its next call, makes that call for real and records
// it in that log. Nothing is replayed twice and nothing is missed: the
// switch record sits between the leader's last call and the new leader's
// first.
//
// A follower that holds all the leader's descriptors (the table was handed
// over) takes over alone when its leader crashes, yields (a rollback after
// promotion) or, for the old version following the new one, diverges.

// Crash handlers of a leader, for the fatal signals the program leaves at
// their default action (its own handlers are its business).
const int kFatal[] = {MVEDSUA_FATAL_SIGNALS};
uint32_t g_leader_handlers; // bit per kFatal entry installed

// True when a thread of process `pid` other than `except` is running or
// runnable (state R in /proc/PID/task/TID/stat), read with raw calls: it
// may be between a call that returned and its record (a thread woken by
// the call's own effect, a reply, is often preempted right there).
bool OtherThreadRunnable(int pid, int except) {
  return AnyThread([&](const char *tid) {
    if (strtol(tid, nullptr, 10) == except)
      return false;
    char path[300], stat[256]; // a task name is a number; room for any
    snprintf(path, sizeof path, "/proc/%d/task/%s/stat", pid, tid);
    long fd = RawSyscall(SYS_openat, AT_FDCWD, long(path), O_RDONLY | O_CLOEXEC);
    long len = fd >= 0 ? RawSyscall(SYS_read, fd, long(stat), sizeof stat - 1) : -1;
    if (fd >= 0)
      RawSyscall(SYS_close, fd);
    stat[len > 0 ? len : 0] = 0;
    const char *paren = strrchr(stat, ')'); // the state follows the name
    return paren && paren[1] == ' ' && paren[2] == 'R';
  }, pid);
}

// With threads, the leader's process is about to stop (a crash of one of
// its threads, or a follower that found it wrong): every thread waits after
// its next record (LeaderHoldIfAsked), and this waits, bounded, until none
// is running any more: a thread that was between a call and its record has
// then recorded it.
void HoldLeader(int pid, int except, long max_ms) {
  StoreU32(&Shared()->hold, 1);
  for (long waited = 0; waited < max_ms && OtherThreadRunnable(pid, except);
       ++waited)
    SleepMsRaw(1);
}

void OnLeaderFatal(int sig, siginfo_t *si, void *) {
  if (ShimLaneCount() > 1 && ShimLog()) // in the mode still recording
    HoldLeader(OwnPid(), int(RawSyscall(SYS_gettid)), 100);
  __atomic_store_n(&g_mode, kOff, __ATOMIC_RELAXED);
  SudAllow();
  if (ShimLog()) {
    FollowerShared *fs = Shared();
    fs->leader_signal = sig;
    fs->leader_fault_addr = uint64_t(si->si_addr);
    FormatBacktrace(fs->leader_backtrace, sizeof fs->leader_backtrace);
    StoreU32(&fs->leader_crashed, 1);
  }
  RawSyscall(SYS_tgkill, RawSyscall(SYS_getpid), RawSyscall(SYS_gettid), sig);
}

void InstallLeaderCrashHandlers() {
  g_leader_handlers = 0;
  void *warm[2];
  backtrace(warm, 2);
  struct sigaction sa = {}, old;
  sa.sa_sigaction = OnLeaderFatal;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigfillset(&sa.sa_mask);
  for (int i = 0; i < int(sizeof kFatal / sizeof *kFatal); ++i)
    if (sigaction(kFatal[i], nullptr, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO) && sigaction(kFatal[i], &sa, nullptr) == 0)
      g_leader_handlers |= 1u << i;
}

void RemoveLeaderCrashHandlers() {
  for (int i = 0; i < int(sizeof kFatal / sizeof *kFatal); ++i)
    if (g_leader_handlers & (1u << i))
      signal(kFatal[i], SIG_DFL);
  g_leader_handlers = 0;
}

void RejoinChannel() {
  int fd = SupervisorFd();
  if (fd >= 0 && g_hidden_channel >= 0)
    RawSyscall(SYS_dup3, g_hidden_channel, fd, O_CLOEXEC);
  RejoinSupervisorChannel();
}

// The update is over (every way it can end): logs, pidfd, hand-over.
void EndUpdate() {
  ShimForgetFollower();
  EpollForget();
  if (g_leader.pidfd >= 0)
    CloseRuntimeFd(g_leader.pidfd);
  if (g_leader_pidfd >= 0)
    CloseRuntimeFd(g_leader_pidfd);
  g_leader_pidfd = -1;
  CloseRuntimeFd(g_hidden_channel);
  g_hidden_channel = -1;
  HandoverDestroy();
  HandoverForgetMirrors();
  RemoveLeaderCrashHandlers();
  g_leader = Leader();
  g_is_follower = g_promoted = g_runs_old = false;
  g_promote_wanted = g_finish_wanted = false;
  g_lanes_switched = false;
  g_switch_claim = 0;
}

// With threads the table is a snapshot of what every thread's calls made:
// it is taken with every managed thread stopped at an update point (none
// inside a call), from the driver's update point. A thread that does not
// stop in time leaves the table for later: the next try comes after a
// second, then twice as long each time (each try stops the other threads up
// to the quiescence bound), at most a minute; the first failure is said.
constexpr uint64_t kTableRetryMs = 1000, kTableRetryMaxMs = 60000;
uint64_t g_table_tried_ms, g_table_retry_ms;

bool StopThreadsForTable() {
  if (ShimLaneCount() <= 1)
    return true;
  if (ThreadSlot() > 0 ||
      (g_table_tried_ms && MonoMs() - g_table_tried_ms < g_table_retry_ms))
    return false;
  std::string reason;
  if (QuiesceThreads(&reason) == 0)
    return true;
  if (!g_table_retry_ms)
    Report("multi-version update to %s: the descriptors are not handed over "
           "yet (the follower cannot take over until they are): %s",
           g_req.path, reason.c_str());
  g_table_tried_ms = MonoMs();
  g_table_retry_ms = !g_table_retry_ms ? kTableRetryMs
                     : g_table_retry_ms * 2 > kTableRetryMaxMs
                         ? kTableRetryMaxMs
                         : g_table_retry_ms * 2;
  return false;
}

// The whole table in one batch, then the record that marks where it
// applies (the threads, if any, stopped). False when the follower is gone.
bool SendTable() {
  int n = HandoverSendTable();
  if (n < 0) {
    LeaderHandoverFailed(-n);
    return false;
  }
  if (!ShimAppendControl(kCtlTable, uint32_t(n), 0)) {
    ShimStopLeading();
    return false;
  }
  return true;
}

// Leader, at a record boundary: once the follower has caught up, the whole
// table goes over in one batch and records carry their descriptors after.
void SendTableWhenCaughtUp() {
  if (HandoverLive() || g_leader.stage_seen < kOutdatedLeader ||
      g_leader.lost || g_leader.reaped)
    return;
  uint64_t start_us = ClockUs(CLOCK_MONOTONIC);
  if (!StopThreadsForTable())
    return;
  bool sent = SendTable();
  if (ShimLaneCount() <= 1)
    return;
  ReleaseThreads();
  if (sent) // it cost the threads a stop: said, with its length
    Report("multi-version update to %s: descriptors handed over to follower "
           "%d with the %d threads stopped for %llu us; it can take over",
           g_req.path, g_leader.pid, ShimLaneCount(),
           (unsigned long long)(ClockUs(CLOCK_MONOTONIC) - start_us));
}

void SendLineToSupervisor(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void SendLineToSupervisor(const char *fmt, ...) {
  int fd = SupervisorFd();
  if (fd < 0)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  n = n < 0 ? 0 : n > int(sizeof line) - 2 ? int(sizeof line) - 2 : n;
  line[n++] = '\n';
  RawWriteAll(fd, line, uint64_t(n));
}

// Waits, bounded, for the follower to consume everything: the leader makes
// no call meanwhile, so this is the whole pause of a promotion. A backlog
// that has not shrunk for kDrainStallMs will not: a follower thread waits
// where its leader's thread did not (a condition the leader's found
// signalled, a point it resumed at in another place) and never reaches its
// next call. Then it fails at once, naming the threads whose records are
// left, rather than hold the clients until the update's timeout. Null when
// drained, else why not.
constexpr uint64_t kDrainStallMs = 3000;
const char *Drain() {
  static char why[700];
  uint64_t start = MonoMs(), moved = start;
  uint64_t left = ShimBacklogBytes();
  while (left > 0) {
    Check();
    if (g_leader.lost || g_leader.reaped ||
        MonoMs() - start > g_req.timeout_ms)
      return "the follower did not drain the logs in time";
    SleepMsRaw(1);
    uint64_t now = ShimBacklogBytes();
    if (now < left)
      moved = MonoMs();
    left = now;
    if (left && MonoMs() - moved > kDrainStallMs) {
      char lanes[560];
      ShimDescribeBacklog(lanes, sizeof lanes);
      snprintf(why, sizeof why,
               "the follower read nothing more for %llu s with records left "
               "(%s): a follower thread waits where the leader's did not",
               (unsigned long long)(kDrainStallMs / 1000), lanes);
      return why;
    }
  }
  return nullptr;
}

// The leader becomes the follower of the new version (the updated-leader
// stage). At an update point, shim paused.
void BecomeOldFollower() {
  int follower = g_leader.pid;
  int pidfd = g_leader.pidfd >= 0
                  ? g_leader.pidfd
                  : int(RawSyscall(SYS_pidfd_open, follower, 0));
  if (pidfd >= 0 && g_leader.pidfd < 0)
    pidfd = MoveFdHigh(pidfd);
  g_leader.pidfd = -1; // now the view of whom this process follows
  RemoveLeaderCrashHandlers();
  ShimSwapLogs();
  g_is_follower = true;
  HandoverMirrorAll();
  LeaveSupervisorChannel();
  InstallCrashHandlers();
  g_leader_pid = follower;
  g_leader_pidfd = pidfd >= 0 ? pidfd : kNoLeaderPidfd;
  g_runs_old = true;
  FollowerYieldsCpu(true);
  StoreU32(&Shared()->stage, kUpdatedLeader);
  g_leader.active = false;
  Report("multi-version update to %s: promoted; follower %d runs the new "
         "version and leads, this process (pid %d) follows it with the old "
         "version (stage updated-leader)",
         g_req.path, follower, OwnPid());
  // Last: from here on every call of this process is replayed.
  ShimTakeOverOnDivergence(true);
  ShimFollow(follower, g_leader_pidfd, MVR_REVERSE); // the reverse rules
}

// The switch itself, at the driver's update point with every other thread
// (if any) stopped at one of its update points: no call is under way.
const char *Switch() {
  static char why[256];
  if (g_promoted)
    return "the new version already leads (stage updated-leader)";
  if (g_leader.stage_seen < kOutdatedLeader) {
    snprintf(why, sizeof why, "the follower has not caught up yet (stage %s)",
             StageName(g_leader.stage_seen));
    return why;
  }
  if (!HandoverLive() && !g_leader.lost && !g_leader.reaped)
    SendTable();
  if (!HandoverLive() || g_leader.lost || g_leader.reaped)
    return "the follower is gone";
  if (const char *stuck = Drain())
    return stuck;
  int channel = SupervisorFd();
  if (channel >= 0 && HandoverSendOne(channel, channel) < 0)
    return "the supervisor channel could not be handed over";
  // Lane 0's last: its switch makes the process lead, and each other
  // thread of the follower then leads its lane from its own switch record.
  if (!ShimAppendControlAll(kCtlSwitch, -1) ||
      !ShimAppendControl(kCtlSwitch, channel >= 0 ? 1 : 0, channel))
    return "the log is no longer active";
  FollowerShared *fs = Shared(); // before BecomeOldFollower swaps the logs
  fs->switch_channel = channel;
  StoreU32(&fs->switch_posted, 1);
  BecomeOldFollower();
  return nullptr;
}

// With threads, every lane switches at once: the leader's threads are
// stopped first (as for the fork), and resume as followers of their lanes.
const char *Promote() {
  static char why[1100];
  bool threads = ShimLaneCount() > 1;
  std::string reason;
  if (threads && QuiesceThreads(&reason) < 0) {
    snprintf(why, sizeof why, "%s", reason.c_str());
    return why;
  }
  const char *fail = Switch();
  if (threads)
    ReleaseThreads();
  return fail;
}

// Promoted leader: `finish` ends the old version; the update is done.
const char *Finish() {
  if (!g_promoted)
    return "the new version does not lead yet: promote first";
  g_leader.finished = true;
  Kill("finish was requested");
  return nullptr;
}

// A child process of this one (read from /proc/self/task/*/children, which
// also lists zombies) other than `except`, or 0.
int ChildOtherThan(int except) {
  int found = 0;
  AnyThread([&](const char *tid) {
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", tid);
    long fd = RawSyscall(SYS_openat, AT_FDCWD, long(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return false;
    long len = RawSyscall(SYS_read, fd, long(buf), sizeof buf - 1);
    RawSyscall(SYS_close, fd);
    buf[len > 0 ? len : 0] = 0;
    for (char *q = buf; *q && !found;) {
      int pid = int(strtol(q, &q, 10));
      found = pid > 0 && pid != except ? pid : 0;
      if (!pid)
        break;
    }
    return found != 0;
  });
  return found;
}

// A child the old version forked (redis' BGSAVE) can only be waited for by
// this process: once the new version leads, the program's waitpid answers
// ECHILD, and a program that waits for its child to learn how it ended
// waits forever. Such a program says so (mvedsua_promote_after_children),
// and its promotion waits, at the following update points, until it has
// reaped its children, up to the update's time limit. (A forking server's
// sessions are left to run: ftpd's master copes with ECHILD.) True: not now.
uint64_t g_promote_waits_since;
bool g_promote_after_children; // mvedsua_promote_after_children()
bool PromoteWaitsForChildren() {
  if (!g_promote_after_children)
    return false;
  int child = ChildOtherThan(g_leader.pid);
  uint64_t now = MonoMs();
  if (!child) {
    g_promote_waits_since = 0;
    return false;
  }
  if (!g_promote_waits_since)
    g_promote_waits_since = now;
  if (now - g_promote_waits_since > g_req.timeout_ms) {
    g_promote_waits_since = 0;
    SendLineToSupervisor("promote-failed the old version's child process %d "
                         "did not end in %llu ms (only its parent can wait "
                         "for it)",
                         child, (unsigned long long)g_req.timeout_ms);
    return true;
  }
  g_promote_wanted = true;
  RequestLook();
  return true;
}

// `promote` and `finish`, at the leader's update point. Returns the mode to
// go on in.
int TakeRequests(int mode) {
  bool promote = g_promote_wanted, finish = g_finish_wanted;
  g_promote_wanted = g_finish_wanted = false;
  if (promote && PromoteWaitsForChildren())
    return mode;
  if (promote) {
    if (const char *why = Promote()) {
      SendLineToSupervisor("promote-failed %s", why);
      return mode;
    }
    return kFollower;
  }
  if (finish)
    if (const char *why = Finish())
      SendLineToSupervisor("finish-failed %s", why);
  return mode;
}

// Promoted leader: a rollback hands the service back to the old version,
// which replays what is left of this log and takes over; this process ends.
// With threads, they are stopped first (none may be between a call and its
// record: the old version would not replay what that call did); when one
// does not stop, the rollback fails with the reason.
void Yield(const char *why) {
  std::string reason;
  if (ShimLaneCount() > 1 && QuiesceThreads(&reason) < 0) {
    SendLineToSupervisor("rollback-failed %s", reason.c_str());
    return;
  }
  FollowerShared *fs = Shared();
  snprintf(fs->reason, sizeof fs->reason, "%s", why);
  StoreU32(&fs->yielded, 1);
  SendLineToSupervisor("leader %d 0", g_leader.pid);
  ShimCloseWriters();
  Report("multi-version update to %s: rolled back after promotion (%s); the "
         "old version (pid %d) takes over",
         g_req.path, why, g_leader.pid);
  for (;;)
    RawSyscall(SYS_exit_group, 0);
}

} // namespace

// ---- what the shim calls when a follower must lead ------------------------------

namespace {

// The process switch, made once, by the first follower thread that gets to
// a switch record (ClaimSwitch).
void SwitchProcessToLeader(int channel) {
  if (channel >= 0)
    if (const char *why = HandoverReceive(1, true))
      FollowerAbort(why);
  int old = g_leader_pid;
  int pidfd = g_leader_pidfd;
  if (pidfd < 0) {
    long fd = RawSyscall(SYS_pidfd_open, old, 0);
    pidfd = fd >= 0 ? MoveFdHigh(int(fd)) : -1;
  }
  g_leader_pidfd = -1;
  ShimSwapLogs();
  g_is_follower = false;
  FollowerYieldsCpu(false);
  g_promoted = true;
  HandoverForgetMirrors();
  HandoverSetLive();
  g_leader = Leader();
  g_leader.active = true;
  g_leader.pid = old;
  g_leader.pidfd = pidfd >= 0 ? pidfd : -1;
  g_leader.started_ms = g_leader.progress_ms = MonoMs();
  g_leader.stage_seen = kUpdatedLeader;
  g_leader.stage_reported = kOutdatedLeader;
  CloseRuntimeFd(g_hidden_channel);
  g_hidden_channel = -1;
  InstallLeaderCrashHandlers();
  ShimLead(old);
  // Before the first real call: the kernel's registrations get this
  // version's data, and the old version the map the other way round.
  EpollBecomeLeader(true);
  RejoinSupervisorChannel();
  SendLineToSupervisor("leader %d %d", OwnPid(), old);
  g_pending = kSwitched;
  RequestLook();
  // Last: the other threads lead their lanes from here on.
  __atomic_store_n(&g_lanes_switched, true, __ATOMIC_RELEASE);
}

bool ClaimSwitch() {
  pid_t none = 0, me = pid_t(RawSyscall(SYS_gettid));
  return __atomic_compare_exchange_n(&g_switch_claim, &none, me, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

} // namespace

void FollowerAwaitSwitch() {
  if (!__atomic_load_n(&g_switch_claim, __ATOMIC_ACQUIRE))
    return;
  uint64_t start = MonoMs();
  while (!__atomic_load_n(&g_lanes_switched, __ATOMIC_ACQUIRE)) {
    if (MonoMs() - start > g_req.timeout_ms)
      FollowerAbort("promotion: the process did not take the lead in time");
    SleepMsRaw(1);
  }
}

namespace {

// Another thread made the process lead, or is making it (it claimed the
// switch): this one leads its own lane once that is done.
bool LeadOwnLaneOnceSwitched() {
  FollowerAwaitSwitch();
  ShimUseOwnLane();
  return true;
}

} // namespace

// Main's thread at lane 0's switch record.
bool FollowerSwitchToLeader(int channel) {
  if (ShimLaneCount() > 1 && !ClaimSwitch())
    return LeadOwnLaneOnceSwitched();
  SwitchProcessToLeader(channel);
  return true;
}

// Another thread at its lane's switch record. Main's thread may never get
// to its own: it may wait for a lock this thread holds (a worker that
// writes to its log under a mutex main's next call also takes). So the
// first thread at a switch makes the process lead, once lane 0's switch is
// in the log (the leader appends it last); main's thread then leads lane 0
// from its next call, whether or not it reads that record (Prepare).
bool FollowerLaneSwitchToLeader() {
  uint64_t start = MonoMs();
  FollowerShared *fs = Shared();
  while (!__atomic_load_n(&g_lanes_switched, __ATOMIC_ACQUIRE)) {
    if (LoadU32(&fs->switch_posted) && ClaimSwitch()) {
      HandoverUseLane(0); // the channel comes on lane 0's socket
      SwitchProcessToLeader(fs->switch_channel);
      break;
    }
    if (__atomic_load_n(&g_switch_claim, __ATOMIC_ACQUIRE))
      return LeadOwnLaneOnceSwitched();
    if (MonoMs() - start > g_req.timeout_ms)
      FollowerAbort("promotion: the leader's switch of lane 0 did not come "
                    "in time");
    SleepMsRaw(1);
  }
  ShimUseOwnLane();
  return true;
}

namespace {

// With threads, one thread decides for the process (the first whose lane
// ended); another whose lane ends meanwhile waits for its decision: to lead
// (it then runs for real) or to end (the process exits).
pid_t g_deciding;

bool DecideForProcess() {
  pid_t me = pid_t(RawSyscall(SYS_gettid)), none = 0;
  for (;;) {
    if (ShimLanesLeading())
      return false;
    if (__atomic_compare_exchange_n(&g_deciding, &none, me, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
        none == me)
      return true;
    none = 0;
    SleepMsRaw(1);
  }
}

void DoneDeciding() { __atomic_store_n(&g_deciding, 0, __ATOMIC_RELEASE); }

// Every other thread's lane replayed to its end: what the leader's threads
// did, the follower's did too (their descriptors installed), before any of
// them runs for real. Bounded: a follower thread that cannot get there
// (waiting for memory another thread of the leader wrote) leaves the
// process unable to take over.
// Given up as soon as nothing was consumed for 3 s: a follower thread that
// waits for a lock the diverging thread holds never gets there, and the
// leader, stopped meanwhile, must not stay stopped until the time limit.
bool OtherLanesDrained() {
  uint64_t start = MonoMs(), moved = start;
  uint64_t left = ShimBacklogOtherLanes();
  while (left > 0) {
    uint64_t now = MonoMs();
    if (now - start > g_req.timeout_ms || now - moved > 3000)
      return false;
    SleepMsRaw(1);
    uint64_t next = ShimBacklogOtherLanes();
    if (next != left)
      moved = MonoMs();
    left = next;
  }
  return true;
}

// A leader gone without its crash handler's word was killed with SIGKILL
// (the OOM killer) when the supervisor, which reaped it, says so on the
// program's channel: a line "leader-killed", read here without taking it
// (this process holds the program's end too), within 3 s. Any other end
// (the signals the supervisor passes on to end the service) is the
// program's, and the supervisor ends this process.
bool g_leader_killed; // the last TakeOverAllowed's finding
bool SupervisorSaysKilled() {
  char buf[4096];
  for (uint64_t start = MonoMs(); g_hidden_channel >= 0 &&
                                  MonoMs() - start < 3000;
       SleepMsRaw(5)) {
    long n = RawSyscall(SYS_recvfrom, g_hidden_channel, long(buf),
                        sizeof buf - 1, MSG_PEEK | MSG_DONTWAIT, 0, 0);
    if (n == 0)
      return false; // the supervisor is gone
    buf[n > 0 ? n : 0] = 0;
    if (strstr(buf, "leader-killed\n"))
      return g_leader_killed = true;
  }
  return false;
}

bool TakeOverAllowed(int kind) {
  if (!g_is_follower || !ShimLog())
    return false;
  FollowerShared *fs = Shared();
  g_leader_killed = false;
  if (kind == kTakeOverLeaderGone && !LoadU32(&fs->leader_crashed) &&
      !SupervisorSaysKilled())
    return false;
  if (kind == kTakeOverYielded && !LoadU32(&fs->yielded))
    return false;
  // Only a follower holding every descriptor of the leader can serve.
  if (ShimLaneCount() <= 1)
    return HandoverHoldsAll();
  // A leader found wrong goes on appending to the other lanes: its threads
  // are held after their next records (none left between a call and its
  // record), then it is stopped (the supervisor sees no end) so that the
  // lanes end; it is killed once this process leads, or let go on when it
  // cannot.
  bool stop = kind == kTakeOverDiverged;
  if (stop) {
    HoldLeader(g_leader_pid, 0, 100);
    __atomic_store_n(&g_stopped_leader, 1, __ATOMIC_RELEASE);
    RawSyscall(SYS_kill, g_leader_pid, SIGSTOP);
  }
  if (OtherLanesDrained() && HandoverHoldsAll()) {
    __atomic_store_n(&g_stopped_leader, 0, __ATOMIC_RELEASE); // killed later
    return true;
  }
  ReleaseStoppedLeader();
  return false;
}

} // namespace

bool FollowerTakeOver(int kind) {
  if (ShimLaneCount() > 1 && !DecideForProcess()) {
    SudDisarm(); // another thread took over: this one's lane is done too
    return true;
  }
  if (!TakeOverAllowed(kind)) {
    DoneDeciding();
    return false;
  }
  __atomic_store_n(&g_mode, kOff, __ATOMIC_RELAXED);
  SudDisarm();
  ShimScheduleAsLeader();
  FollowerShared *fs = Shared();
  LogCloseReader(ShimLog());
  g_is_follower = false;
  FollowerYieldsCpu(false);
  HandoverForgetMirrors();
  EpollBecomeLeader(false); // the registrations get this version's data
  ShimTakeOverOnDivergence(false);
  RejoinChannel();
  SendLineToSupervisor("leader %d 0", OwnPid());
  // After the line: the supervisor must know who leads before it reaps this.
  if (kind == kTakeOverDiverged)
    RawSyscall(SYS_kill, g_leader_pid, SIGKILL);
  const DivergenceReport *d = ShimDivergence();
  if (kind == kTakeOverLeaderGone && g_leader_killed)
    snprintf(g_pending_reason, sizeof g_pending_reason,
             "the leader (pid %d) was killed with SIGKILL", g_leader_pid);
  else if (kind == kTakeOverLeaderGone)
    snprintf(g_pending_reason, sizeof g_pending_reason,
             "the leader (pid %d) crashed: signal %d (SIG%s), faulting "
             "address 0x%llx\n%s",
             g_leader_pid, fs->leader_signal, SignalName(fs->leader_signal),
             (unsigned long long)fs->leader_fault_addr, fs->leader_backtrace);
  else if (kind == kTakeOverYielded)
    snprintf(g_pending_reason, sizeof g_pending_reason,
             "the new leader (pid %d) handed the service back: %s",
             g_leader_pid, fs->reason);
  else
    snprintf(g_pending_reason, sizeof g_pending_reason,
             "the new leader (pid %d) diverged from the old version: %.1200s",
             g_leader_pid, d ? d->text : "");
  SigStop(); // the program's handlers are its own again
  ShimLanesLead(); // threads still waiting in their lanes run for real
  DoneDeciding();
  // Last: with threads, main's may be at its update point at once, where
  // the update ends (EndUpdate): nothing above may come after that.
  g_pending = kTookOver;
  RequestLook();
  return true;
}

// The follower ends with `outcome` and `why` in the shared area.
[[noreturn]] static void FollowerEnd(uint32_t outcome, const char *why) {
  FollowerShared *fs = Shared();
  snprintf(fs->reason, sizeof fs->reason, "%s", why);
  StoreU32(&fs->outcome, outcome);
  ReleaseStoppedLeader();
  FollowerNoteExit(MVEDSUA_MVE_EXIT_UPDATE_FAILED);
  LogCloseReader(ShimLog());
  for (;;)
    RawSyscall(SYS_exit_group, MVEDSUA_MVE_EXIT_UPDATE_FAILED);
}

[[noreturn]] void FollowerFailUpdate(const char *why) {
  FollowerEnd(kUpdateFailed, why);
}

[[noreturn]] void FollowerAbort(const char *why) { FollowerEnd(kAborted, why); }

void LeaderHandoverFailed(int err) {
  if (!g_leader.active || g_leader.lost)
    return ShimStopLeading();
  // A follower that ended (a divergence, a crash) reset the socket: its own
  // end says why once it is reaped, not the hand-over.
  // (It may be the supervisor's child, not ours: its pidfd says it ended,
  // once all its threads have; a crashing one takes a little while.)
  const DivergenceReport *d = ShimDivergence();
  struct pollfd ended = {g_leader.pidfd, POLLIN, 0};
  if ((d && __atomic_load_n(&d->kind, __ATOMIC_ACQUIRE)) ||
      (g_leader.pidfd >= 0 &&
       RawSyscall(SYS_poll, long(&ended), 1, 100) > 0 &&
       (ended.revents & POLLIN))) {
    ShimCloseReaders();
    return ShimStopLeading();
  }
  Kill("the descriptor hand-over failed (%s): it could no longer take over",
       strerror(err));
}

namespace {

// At the first update point after a switch or a takeover: what happened,
// said in this process, which leads now.
void ReportPending() {
  uint32_t what = g_pending;
  g_pending = kNothing;
  AnnounceCurrentVersion();
  if (what == kSwitched) {
    memset(&g_status, 0, sizeof g_status);
    g_status.leader_pid = OwnPid();
    g_status.follower_pid = g_leader.pid;
    g_status.started_us = WallUs();
    snprintf(g_status.outcome, sizeof g_status.outcome, "in-progress");
    snprintf(g_status.to_path, sizeof g_status.to_path, "%s", g_req.path);
    Report("multi-version update to %s: promoted; this process (pid %d) runs "
           "the new version and leads, the old version (pid %d) follows it "
           "(stage updated-leader)",
           g_req.path, OwnPid(), g_leader.pid);
    ReportStage();
    return;
  }
  bool new_version = !g_runs_old;
  SetStage(kSingleLeader);
  g_status.leader_pid = OwnPid();
  g_status.follower_pid = 0;
  g_status.ended_us = WallUs();
  snprintf(g_status.outcome, sizeof g_status.outcome, "%s",
           new_version ? "finished" : "rolled-back");
  size_t n = strlen(g_pending_reason);
  while (n && g_pending_reason[n - 1] == '\n')
    g_pending_reason[--n] = 0;
  snprintf(g_status.reason, sizeof g_status.reason, "%s", g_pending_reason);
  snprintf(g_status.to_path, sizeof g_status.to_path, "%s", g_req.path);
  Report("multi-version update to %s %s: %s; this process (pid %d) took over "
         "with the %s version",
         g_req.path, new_version ? "finished" : "rolled back",
         g_pending_reason, OwnPid(), new_version ? "new" : "old");
  EndUpdate(); // before Publish: the logs are gone, no backlog to report
  g_status.backlog_bytes = g_status.backlog_records = 0;
  Publish();
}

} // namespace

void LeaderHoldIfAsked() {
  if (!ShimLog())
    return;
  const uint32_t *hold = &Shared()->hold;
  while (LoadU32(hold))
    SleepMsRaw(1);
}

long WaitFollower(int pid, int *status, int options) {
  if (!g_leader.active || pid != g_leader.pid || g_leader.pidfd < 0)
    return RawSyscall(SYS_wait4, pid, long(status), options, 0);
  struct pollfd p = {g_leader.pidfd, POLLIN, 0};
  for (;;) {
    long r = RawSyscall(SYS_poll, long(&p), 1, options & WNOHANG ? 0 : -1);
    if (r > 0 && (p.revents & POLLNVAL)) {
      // The program closed our pidfd (a bulk close): ask the pid instead
      // (the supervisor reaps it promptly once it is a zombie).
      if (RawSyscall(SYS_kill, pid, 0) == 0) {
        if (options & WNOHANG)
          return 0;
        SleepMsRaw(5);
        continue;
      }
      break;
    }
    if (r > 0)
      break;
    if (r == 0 || r != -EINTR)
      return 0;
  }
  // Gone: the status it would have had, from what it left.
  const FollowerShared *fs = Shared();
  if (g_leader.killed[0])
    *status = SIGKILL;
  else if (LoadU32(&fs->outcome) == kCrashed)
    *status = fs->signal & 0x7f;
  else if (LoadU32(&fs->exit_noted))
    *status = (fs->exit_code & 0xff) << 8;
  else
    *status = -1;
  return pid;
}

bool FollowerCrashed(Log *log, char *out, size_t size) {
  auto *fs = reinterpret_cast<const FollowerShared *>(
      static_cast<char *>(LogUserArea(log)) + kSharedOffset);
  if (LoadU32(&fs->outcome) != kCrashed)
    return false;
  snprintf(out, size, "signal %d (SIG%s) at address 0x%llx after %llu "
           "records\n%s", fs->signal, SignalName(fs->signal),
           (unsigned long long)fs->fault_addr, (unsigned long long)fs->record,
           fs->backtrace);
  return true;
}

void FollowerNoteExit(int code) {
  if (!g_is_follower || !ShimLog())
    return;
  FollowerShared *fs = Shared();
  fs->exit_code = code;
  StoreU32(&fs->exit_noted, 1);
}

const char *StageName(uint32_t stage) {
  switch (stage) {
  case kUpdating: return "updating";
  case kCatchingUp: return "catching-up";
  case kOutdatedLeader: return "outdated-leader";
  case kUpdatedLeader: return "updated-leader";
  default: return "single-leader";
  }
}

bool MultiVersionBusy() {
  return g_is_follower || g_leader.active || ShimFollowerPid() > 0 ||
         __atomic_load_n(&g_mode, __ATOMIC_RELAXED) != kOff;
}

void ForgetUpdateInChild() {
  HandoverDestroy(); // both ends at the fork, or the end this process kept
  HandoverForgetMirrors();
  for (int *fd : {&g_leader.pidfd, &g_leader_pidfd, &g_hidden_channel}) {
    if (*fd >= 0)
      CloseRuntimeFd(*fd);
    *fd = -1;
  }
  // The leader's crash handlers would mark a crash of the child as the
  // leader's: the program's default action again, unless the program has
  // installed a handler of its own since.
  struct KernelSigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } now, dfl = {};
  for (int i = 0; i < int(sizeof kFatal / sizeof *kFatal); ++i)
    if ((g_leader_handlers & (1u << i)) &&
        RawSyscall(SYS_rt_sigaction, kFatal[i], 0, long(&now), 8) == 0 &&
        now.handler == reinterpret_cast<void *>(OnLeaderFatal))
      RawSyscall(SYS_rt_sigaction, kFatal[i], long(&dfl), 0, 8);
  g_leader_handlers = 0;
  g_leader = Leader();
  g_is_follower = g_runs_old = g_follow_pending = g_promoted = false;
  g_promote_wanted = g_finish_wanted = g_lanes_switched = false;
  g_switch_claim = 0;
  g_pending = kNothing;
}

// glibc's malloc gives each thread an arena, and the follower's threads are
// new: their arenas, and when each heap grows or shrinks, differ from the
// leader's threads'. That costs no recorded call (memory calls run locally)
// but two, each made once per process, by whichever thread gets there
// first: /sys/devices/system/cpu/online, read when a new thread finds more
// than 8 arenas (to size their limit), and /proc/sys/vm/overcommit_memory,
// read when a thread's heap first shrinks. One process would make the call
// where the other did not: a divergence in that thread. So before the fork
// the leader fixes the arena limit (what glibc would compute) and a trim
// threshold above any thread heap's size (256 MiB; a thread heap is at
// most 64 MiB, so none shrinks); both processes inherit them. (They stay: freed memory at the top of a heap is
// kept for reuse rather than given back to the kernel.)
static void SteadyMalloc() {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  mallopt(M_ARENA_MAX, int(8 * (cores > 0 ? cores : 1)));
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

// Every thread of the process must be one the runtime can stop and
// relaunch: the follower is forked with only the calling thread, and each
// managed thread gets a lane. Null with *lanes set, or why not.
static const char *QuiesceForFork(int *lanes) {
  static char why[1024];
  int managed = ManagedThreadCount();
  int others = CountThreads() - 1 - managed;
  *lanes = 1;
  if (others > 0) {
    snprintf(why, sizeof why,
             "the program has %d thread(s) not started by "
             "mvedsua_thread_create: a follower could not relaunch them",
             others);
    return why;
  }
  if (managed == 0)
    return nullptr;
  std::string reason;
  if (QuiesceThreads(&reason) < 0) {
    snprintf(why, sizeof why, "%s", reason.c_str());
    return why;
  }
  SteadyMalloc();
  *lanes = MaxManagedSlot() + 1;
  return nullptr;
}

int ForkUpdateFollower(const char *path, const char *point) {
  snprintf(g_req.path, sizeof g_req.path, "%s", path);
  char err[256];
  if (MultiVersionBusy())
    return NotStarted("a follower exists");
  int lanes = 0;
  if (const char *why = QuiesceForFork(&lanes))
    return NotStarted(why);
  if (!ShimNewLanes(lanes, g_req.log, err, sizeof err)) {
    ReleaseThreads();
    return NotStarted(err);
  }
  ShimOrderAllCalls(g_req.ordered);
  if (!HandoverCreate(lanes, err, sizeof err)) {
    ShimForgetFollower();
    ReleaseThreads();
    return NotStarted(err);
  }
  StoreU32(&Shared()->stage, kUpdating);
  fflush(nullptr); // nothing buffered may be written by both processes
  int leader = OwnPid();
  int pidfd = -1;
  pid_t pid = SpawnFollower(&pidfd);
  if (pid < 0) {
    snprintf(err, sizeof err, "fork: %s", strerror(errno));
    ShimForgetFollower();
    HandoverDestroy();
    ReleaseThreads();
    return NotStarted(err);
  }
  if (pid == 0) {
    BecomeFollower(leader, pidfd >= 0);
    return kInFollower;
  }
  BecomeLeader(pid, pidfd, point);
  return kInLeader;
}

// The calling thread's own calls are paused (g_shim_paused); the process's
// mode stays, so its other threads keep recording or replaying their lanes.
int PauseShim() {
  g_shim_paused = true;
  return __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
}

// The driver's side of the end of an update point: the stages advance.
void AdvanceStages(int mode) {
  int paused = mode;
  // A follower's other thread may be making the process lead (a switch
  // record it read first): done first. One that starts after this look is
  // left alone here (its stage is reported at the next point).
  bool switched = false;
  if (paused == kFollower) {
    FollowerAwaitSwitch();
    switched = __atomic_load_n(&g_lanes_switched, __ATOMIC_ACQUIRE);
  }
  if (g_follow_pending)
    return StartFollowing();
  if (g_pending) {
    bool took_lead = g_pending == kSwitched; // maybe by another thread,
    ReportPending();                         // while this one was at its point
    int now = __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
    mode = took_lead ? now : now == kOff && !g_leader.active ? kOff : mode;
  }
  if (g_leader.active && (paused != kFollower || switched))
    mode = LeaderAtPoint(mode);
  else if (!g_leader.active)
    RetryIfDue();
  // A follower's other thread may have made the process lead meanwhile (a
  // switch record it read first): its mode stays.
  if (paused == kFollower) {
    __atomic_compare_exchange_n(&g_mode, &paused, mode, false,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return;
  }
  __atomic_store_n(&g_mode, mode, __ATOMIC_RELAXED);
}

void ResumeShim(int mode) {
  if (ThreadSlot() <= 0) // the stages are driven from the thread that runs main
    AdvanceStages(mode);
  g_shim_paused = false; // last: the reports above are the runtime's own
}

void LeaderTick() {
  if (!TryLook())
    return;
  CheckLocked();
  if (g_leader.active && !g_leader.lost) {
    Refresh(&g_status);
    if (ShimLaneCount() <= 1) // with threads: at an update point only
      SendTableWhenCaughtUp();
  }
  EndLook();
}

void LeaderLostFollower() {
  if (!g_leader.active)
    return;
  g_leader.lost = true;
  RequestLook();
}

bool FollowerCheckCaughtUp() {
  if (!g_is_follower || ShimBacklogBytes() > kCaughtUpBytes)
    return false;
  FollowerShared *fs = Shared();
  if (LoadU32(&fs->stage) != kCatchingUp)
    return true; // another lane's thread saw it first
  fs->caught_up_us = WallUs();
  StoreU32(&fs->stage, kOutdatedLeader);
  return true;
}

int DescribeUpdateFollowerEnd(char *line, size_t size, int status, int pid) {
  if (!g_leader.active || pid != g_leader.pid)
    return 0;
  bool clean = status != -1 && !g_leader.killed[0] &&
               LoadU32(&Shared()->outcome) == kNoOutcome &&
               !(ShimDivergence() && ShimDivergence()->kind);
  if (clean)
    return 0; // the shim's own report: records replayed, peak backlog
  int n = snprintf(line, size, "mvedsua: ");
  n += Describe(line + n, size - n, status);
  if (n < int(size) - 1)
    line[n++] = '\n', line[n] = 0;
  return n;
}

// The leader exits while its follower existed: the last status says how the
// follower ended (it was waited for by the shim).
void LeaderExited(int status) {
  if (!g_leader.active)
    return;
  Refresh(&g_status);
  g_leader.reaped = true;
  g_leader.wait_status = status;
  Describe(g_status.reason, sizeof g_status.reason, status);
  bool followed = WIFEXITED(status) && !g_leader.killed[0] &&
                  LoadU32(&Shared()->outcome) == kNoOutcome &&
                  !ShimDivergence()->kind &&
                  WEXITSTATUS(status) < MVEDSUA_MVE_EXIT_DIVERGED;
  snprintf(g_status.outcome, sizeof g_status.outcome, "%s",
           followed ? "followed-to-exit" : "rolled-back");
  SetStage(kSingleLeader);
  g_status.follower_pid = 0;
  g_status.ended_us = WallUs();
  Publish();
}

} // namespace mve

void SetMveStageHook(MveStageHook hook) { mve::g_stage_hook = hook; }

int RequestMultiVersionUpdate(const char *path,
                              const mvedsua_rt_mve_options *o, int source) {
  if (mve::MultiVersionBusy()) {
    errno = EBUSY; // checked first: leader and follower answer alike
    return -1;
  }
  mve::SetOptions(o);
  mve::g_req.source = source;
  return RequestUpdateMode(path, source, kUpdateMultiVersion);
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT int
mvedsua_rt_request_mve_update(const char *path,
                              const struct mvedsua_rt_mve_options *o) {
  return RequestMultiVersionUpdate(path, o, kUpdateFromProgram);
}

MVEDSUA_EXPORT void mvedsua_rt_mve_status(struct mvedsua_rt_mve_status *out) {
  using namespace mvedsua::mve;
  if (g_leader.active) {
    Check();
    snprintf(g_status.stage, sizeof g_status.stage, "%s",
             StageName(g_leader.stage_seen));
    Refresh(&g_status);
  } else if (!g_status.stage[0]) {
    snprintf(g_status.stage, sizeof g_status.stage, "%s",
             StageName(kSingleLeader));
    snprintf(g_status.outcome, sizeof g_status.outcome, "none");
  }
  if (!g_status.leader_pid)
    g_status.leader_pid = OwnPid();
  *out = g_status;
}

// Rollback on request (the operator, the supervisor, a test), at any stage
// before promotion: the follower is killed and reported like any other end.
// 0, or -1 with ESRCH when no follower exists (and in the follower itself,
// which its leader is killing: whatever it answers is never compared).
MVEDSUA_EXPORT int mvedsua_rt_mve_rollback(const char *why) {
  using namespace mvedsua::mve;
  if (!g_leader.active || g_leader.lost || g_leader.reaped) {
    errno = ESRCH;
    return -1;
  }
  if (g_promoted) { // the old version takes the service back; this one ends
    Yield(why && *why ? why : "no reason given");
    return 0; // with threads, one that did not stop: rollback-failed
  }
  g_leader.requested = true;
  Kill("rolled back on request (%s)", why && *why ? why : "no reason given");
  RequestLook();
  return 0;
}

// Promotion and finish on request: taken at the leader's next update point
// (the outcome comes as a stage change, or "promote-failed"/"finish-failed"
// on the supervisor channel). 0, or -1 with ESRCH when no update is under way.
MVEDSUA_EXPORT int mvedsua_rt_mve_promote(void) {
  using namespace mvedsua::mve;
  if (!g_leader.active || g_leader.lost || g_leader.reaped) {
    errno = ESRCH;
    return -1;
  }
  g_promote_wanted = true;
  RequestLook();
  return 0;
}

MVEDSUA_EXPORT void __mvedsua_rt_promote_after_children(void) {
  mvedsua::mve::g_promote_after_children = true;
}

MVEDSUA_EXPORT int mvedsua_rt_mve_finish(void) {
  using namespace mvedsua::mve;
  if (!g_leader.active || g_leader.lost || g_leader.reaped) {
    errno = ESRCH;
    return -1;
  }
  g_finish_wanted = true;
  RequestLook();
  return 0;
}
