// SupervisorChannel.cpp: the program's side of the channel to mvedsua-run.
//
// The supervisor forks the program and keeps the other end of a socketpair.
// Lines the program sends:
//   hello PID ID PATH          the version it runs (at start, after updates)
//   update-taken PATH          the supervisor's request was taken at an update
//                              point: the update is under way
//   update-withdrawn PATH      a "cancel" arrived before the request was taken
//   update-stats TRANSFORMED HEAP_OBJECTS LOCALS LOAD_US TRANSFER_US POINT
//                              precedes each outcome line
//   update-done FROM_ID TO_ID PAUSE_US ENTRIES BYTES REMAPPED PATH
//   update-failed REASON       the outcome of the supervisor's request
//   program update-done ... / program update-failed ...
//                              the outcome of an update the program asked
//                              for itself (mvedsua_request_update)
//   mve STAGE LEADER_PID FOLLOWER_PID BACKLOG_BYTES BACKLOG_RECORDS PEAK_BYTES
//       REPLAYED OUTCOME REASON
//                              each change of a multi-version update's stage
//                              or outcome (SetMveStageHook), and the log's
//                              figures now and then; REPLAYED counts the
//                              records the follower consumed; REASON is the
//                              rest of the line, with "\" as "\\" and newlines
//                              as "\n" (divergence reports are multi-line)
//   rollback-failed REASON     a "rollback" found no follower to end
//   promote-failed REASON, finish-failed REASON
//                              a "promote" or "finish" could not be done
//   leader PID FOLLOWER_PID    another process leads now (a promotion, or a
//                              follower that took over: FOLLOWER_PID 0); it
//                              speaks on the channel from then on
// Lines the supervisor sends:
//   update TIMEOUT_MS PATH     take this request at the next update point; the
//                              new version has TIMEOUT_MS to reach its point
//   update-mve TIMEOUT_MS RETRIES PATH
//                              a multi-version update (docs/mve.md) at the next
//                              update point: the follower's time limit and the
//                              retries of mvedsua_rt_mve_options
//   rules PATH|-               the compiled rules (docs/rules.md) the next
//                              multi-version update's follower applies; "-"
//                              for none. Sent before each update-mve.
//   learn PATH|-               the next multi-version update's follower notes
//                              each difference in PATH and goes on (learning
//                              the noise); "-" for a normal follower
//   cancel                     forget a request not taken yet (its time ran out)
//   rollback                   end the follower of a multi-version update
//                              (mvedsua_rt_mve_rollback), read at the next
//                              update point like a request; after promotion
//                              the old version takes the service back
//   promote                    the follower leads, the old version follows
//   finish                     the old version ends (after promote)
// The supervisor writes a request, then sends MVEDSUA_WAKE_SIGNAL, whose
// handler only sets __mvedsua_update_pending: the program reads the request
// at its next update point (the poll hook), outside any signal handler.
//
// The channel belongs to the process mvedsua-run started (and, after a
// promotion or a takeover, to the process that leads). A child the program
// forks (a forking server's session) inherits the descriptor, the hooks and
// the update flag; it leaves the channel in a pthread_atfork handler
// (LeaveChannelInChild below), so it never reads the leader's requests nor
// speaks for the program.
#include "Runtime.h"
#include "Threads.h"
#include "ToolApi.h"
#include "mve/Rules.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mvedsua {
namespace {

int g_supervisor_fd = -1;

// True in a child the program forked: it left the channel (LeaveChannelInChild)
// and must not write on it. Cleared when a process rejoins the channel.
bool g_left_channel;

// Received bytes not yet forming a whole line. A request line is at most
// "update " + a path; anything longer is dropped with a message.
char g_in[kMaxPath + 64];
size_t g_in_len;

void OnWake(int) {
  __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELAXED);
  NoteWakeSignal(); // passes it on to the thread that runs main
}

bool WriteAll(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    buf += n;
    len -= size_t(n);
  }
  return true;
}

// One line to the supervisor; `a` and `b` are joined without a separator.
void SendLine(const char *a, const char *b = "") {
  if (g_left_channel)
    return;
  char line[kMaxPath + 1200];
  int n = snprintf(line, sizeof line, "%s%s\n", a, b);
  if (n < 0 || size_t(n) >= sizeof line) // never cut a line: end it
    n = int(sizeof line - 1), line[n - 1] = '\n';
  if (!WriteAll(g_supervisor_fd, line, size_t(n)))
    Report("error: cannot write to the supervisor: %s", strerror(errno));
}

// Why RequestUpdate refused a request from the supervisor, for its client.
void SendRefusal(const char *path, int err) {
  char reason[kMaxPath + 200];
  if (err == EBUSY)
    snprintf(reason, sizeof reason,
             "update refused: an update the program requested itself is "
             "pending or in progress");
  else if (err == ENOTCONN)
    snprintf(reason, sizeof reason,
             "update refused: the program was not started by mvedsua-run's "
             "driver, control has nowhere to migrate to");
  else
    snprintf(reason, sizeof reason, "update failed: cannot reach %s: %s", path,
             strerror(err));
  SendLine("update-failed ", reason);
}

// Why a multi-version request was refused.
void SendMveRefusal(const char *path, int err) {
  if (err == EBUSY)
    return SendLine("update-failed update refused: a multi-version update is "
                    "under way (a follower exists) or an update is pending");
  SendRefusal(path, err);
}

// The stage hook (in the leader, at an update point or at exit, outside
// recording): one "mve ..." line per change.
void SendMveStage(const struct mvedsua_rt_mve_status *s) {
  static char line[sizeof s->reason * 2 + 256];
  int n = snprintf(line, sizeof line, "mve %s %d %d %llu %llu %llu %llu %llu %s ",
                   s->stage, s->leader_pid, s->follower_pid,
                   (unsigned long long)s->backlog_bytes,
                   (unsigned long long)s->backlog_records,
                   (unsigned long long)s->peak_backlog_bytes,
                   (unsigned long long)s->records_consumed,
                   (unsigned long long)s->order_timeouts,
                   s->outcome[0] ? s->outcome : "none");
  if (n < 0)
    return;
  size_t len = size_t(n);
  for (const char *p = s->reason; *p && len + 3 < sizeof line; ++p) {
    if (*p == '\\' || *p == '\n') {
      line[len++] = '\\';
      line[len++] = *p == '\n' ? 'n' : '\\';
    } else {
      line[len++] = *p == '\r' ? ' ' : *p;
    }
  }
  line[len++] = '\n';
  if (g_left_channel)
    return;
  if (!WriteAll(g_supervisor_fd, line, len))
    Report("error: cannot write to the supervisor: %s", strerror(errno));
}

// The time limit of the request standing in the path buffer, and whether it
// is a multi-version one (with its retries).
unsigned long long g_request_timeout_ms;
bool g_request_mve;
unsigned long long g_request_retries;
// A "rollback" was read: done after the requests (outside any handler).
bool g_rollback_wanted;
bool g_promote_wanted, g_finish_wanted;

// One line from the supervisor; `*have` says whether `path` holds a request
// that still stands.
void HandleLine(const char *line, char *path, size_t size, bool *have) {
  char *rest;
  bool mve = strncmp(line, "update-mve ", 11) == 0;
  if (mve || strncmp(line, "update ", 7) == 0) {
    unsigned long long ms = strtoull(line + (mve ? 11 : 7), &rest, 10);
    unsigned long long retries = 0;
    if (mve && *rest == ' ')
      retries = strtoull(rest + 1, &rest, 10);
    if (*rest != ' ' || !rest[1]) {
      Report("warning: malformed update request from the supervisor ignored");
      return;
    }
    if (*have) // the supervisor sends one at a time; never drop one silently
      SendLine("update-failed update refused: superseded by a later request "
               "for ",
               rest + 1);
    snprintf(path, size, "%s", rest + 1);
    g_request_timeout_ms = ms;
    g_request_mve = mve;
    g_request_retries = retries;
    *have = true;
  } else if (strncmp(line, "rules ", 6) == 0) {
    mve::RulesSetPending(strcmp(line + 6, "-") == 0 ? "" : line + 6);
  } else if (strncmp(line, "learn ", 6) == 0) {
    mve::RulesSetLearn(strcmp(line + 6, "-") == 0 ? "" : line + 6);
  } else if (strcmp(line, "rollback") == 0) {
    g_rollback_wanted = true;
  } else if (strcmp(line, "promote") == 0) {
    g_promote_wanted = true;
  } else if (strcmp(line, "finish") == 0) {
    g_finish_wanted = true;
  } else if (strcmp(line, "leader-killed") == 0) {
    // Read by a follower that took over from a leader killed with SIGKILL
    // (Follower.cpp, SupervisorSaysKilled): nothing more to do.
  } else if (strcmp(line, "cancel") == 0) {
    if (*have)
      SendLine("update-withdrawn ", path);
    *have = false;
  } else {
    Report("warning: unknown message from the supervisor ignored");
  }
}

// Reads every whole line available without blocking. Of the requests read,
// the one standing last (not followed by "cancel") is copied to `path`.
bool ReadRequests(char *path, size_t size) {
  bool have = false;
  for (;;) {
    ssize_t n = recv(g_supervisor_fd, g_in + g_in_len, sizeof g_in - g_in_len,
                     MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return have;
    g_in_len += size_t(n);
    char *start = g_in, *end = g_in + g_in_len, *nl;
    while ((nl = static_cast<char *>(memchr(start, '\n', size_t(end - start))))) {
      *nl = '\0';
      HandleLine(start, path, size, &have);
      start = nl + 1;
    }
    g_in_len = size_t(end - start);
    memmove(g_in, start, g_in_len);
    if (g_in_len == sizeof g_in) {
      Report("warning: over-long message from the supervisor dropped");
      g_in_len = 0;
    }
  }
}

// The poll hook: at an update point of the driver thread, before the runtime
// looks for a pending request.
void PollSupervisor() {
  char path[kMaxPath];
  bool have = ReadRequests(path, sizeof path);
  if (g_rollback_wanted) {
    g_rollback_wanted = false;
    if (mvedsua_rt_mve_rollback("requested by the operator") != 0)
      SendLine("rollback-failed there is no follower to roll back "
               "(no multi-version update is under way)");
  }
  if (g_promote_wanted) {
    g_promote_wanted = false;
    if (mvedsua_rt_mve_promote() != 0)
      SendLine("promote-failed no multi-version update is under way");
  }
  if (g_finish_wanted) {
    g_finish_wanted = false;
    if (mvedsua_rt_mve_finish() != 0)
      SendLine("finish-failed no multi-version update is under way");
  }
  if (!have)
    return;
  if (g_request_mve) {
    mvedsua_rt_mve_options o = {};
    o.timeout_ms = g_request_timeout_ms;
    o.retries = g_request_retries;
    if (mvedsua_rt_request_mve_update(path, &o) != 0)
      return SendMveRefusal(path, errno);
    SendLine("update-taken ", path);
    return;
  }
  if (RequestUpdate(path, kUpdateFromSupervisor) != 0)
    return SendRefusal(path, errno);
  // The engine ends an update whose new version is late at its next update
  // point of another name; the request's own limit applies (it stays set for
  // later updates too).
  SetUpdateTimeout(g_request_timeout_ms);
  // The runtime takes a pending request right after this hook returns, at
  // this very update point: the supervisor may count the pause from here.
  SendLine("update-taken ", path);
}

// The result hook: once per request taken, when it finished or failed.
void SendOutcome(const mvedsua_rt_update_status *s) {
  char stats[256];
  snprintf(stats, sizeof stats, "update-stats %llu %llu %llu %llu %llu %s",
           (unsigned long long)s->transformed,
           (unsigned long long)s->heap_objects, (unsigned long long)s->locals,
           (unsigned long long)s->load_us, (unsigned long long)s->transfer_us,
           s->point);
  SendLine(stats);
  char msg[sizeof s->reason + sizeof s->to_path + 128];
  FormatUpdateMessage(s, msg, sizeof msg);
  SendLine(s->source == kUpdateFromSupervisor ? "" : "program ", msg);
  // A request that came while this update ran was not read (update points
  // skip the poll hook then) and its wake-up is spent: look again at the
  // next update point.
  char peek;
  if (recv(g_supervisor_fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
    __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELEASE);
}

// pthread_atfork's child handler, in every child of a glibc fork() of a
// supervised program: a forking server's session, or any helper it forks.
// Such a child is a copy of the leader at the fork, with the channel's
// descriptor, the hooks, __mvedsua_update_pending and, during a
// multi-version update, the leader's view of its follower, all as they were.
// If the flag was set at the fork, the child's first update point would:
//  - run the poll hook, read a request the supervisor had just written off
//    the shared socket and perform the update itself: the leader would never
//    see it, and the child's "hello" would make status report a version the
//    service does not run (test/forking/channel.test);
//  - in a leader's child (the runtime sets the flag itself to report stages,
//    retry and conclude), run the leader's watch on a follower that is not
//    its own: report the promotion as "this process (pid CHILD) leads",
//    conclude the update a second time, even retry it by forking a follower
//    of the session (test/forking/ftpd-mve.test).
// So the child takes no hook (no reading, no reports, no stage lines),
// writes nothing more on the channel, and starts with the flag clear: its
// update points stay on their fast path. The supervisor wakes the leader's
// pid alone, and the runtime sets the flag only from the leader's recording
// and update points, which a child (mode OFF, see TrappedFork) never runs,
// so nothing sets it in the child afterwards unless the child itself asks
// for an update (mvedsua_request_update).
//
// The descriptor itself stays open (not closed nor pointed at /dev/null):
// the runtime's own follower is cloned without running atfork handlers, and
// in its fork() fallback it hides a copy of this very descriptor for the day
// it leads; it rejoins through RejoinSupervisorChannel, which lets it speak
// again. The supervisor does not wait for the channel's end of file, so an
// open copy in a long session costs nothing.
void LeaveChannelInChild() {
  if (g_supervisor_fd < 0)
    return;
  g_left_channel = true;
  g_in_len = 0;
  __atomic_store_n(&__mvedsua_update_pending, 0, __ATOMIC_RELEASE);
  SetUpdatePollHook(nullptr);
  SetUpdateResultHook(nullptr);
  SetMveStageHook(nullptr);
}

} // namespace

int SupervisorFd() { return g_supervisor_fd; }

// Only pointers are set: this may run in the SIGSYS handler of a follower
// taking over (its channel descriptor is back in place already).
void RejoinSupervisorChannel() {
  if (g_supervisor_fd < 0)
    return;
  g_in_len = 0;
  g_left_channel = false;
  SetUpdatePollHook(PollSupervisor);
  SetUpdateResultHook(SendOutcome);
  SetMveStageHook(SendMveStage);
}

// "hello PID ID PATH": ID is "-" for a version without a registry, PATH is
// absolute so the operator sees which file runs whatever the supervisor's cwd.
void AnnounceVersion(int v, const char *loaded_path) {
  if (g_supervisor_fd < 0 || g_left_channel)
    return;
  char real[kMaxPath];
  if (realpath(loaded_path, real))
    loaded_path = real;
  char id[17] = "-";
  if (v >= 0)
    FormatVersionId(ComputeVersionId(v), id);
  char line[kMaxPath + 64];
  int n = snprintf(line, sizeof line, "hello %d %s %s\n", int(getpid()), id,
                   loaded_path);
  if (n < 0 || size_t(n) >= sizeof line ||
      !WriteAll(g_supervisor_fd, line, size_t(n)))
    Report("error: cannot tell the supervisor which version runs: %s",
           strerror(errno));
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT int mvedsua_rt_attach_supervisor(int fd) {
  struct sigaction sa = {};
  sa.sa_handler = OnWake;
  // The program's own blocking calls carry on; epoll_wait, poll, select and
  // nanosleep return EINTR whatever the flag says, which is what wakes an
  // event loop blocked without a timeout (docs/runtime.md).
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(MVEDSUA_WAKE_SIGNAL, &sa, nullptr) != 0)
    return -1;
  g_supervisor_fd = fd;
  SetUpdatePollHook(PollSupervisor);
  SetUpdateResultHook(SendOutcome);
  SetMveStageHook(SendMveStage);
  // Once per process: children of the program leave the channel.
  static bool atfork_registered;
  if (!atfork_registered && pthread_atfork(nullptr, nullptr, LeaveChannelInChild) == 0)
    atfork_registered = true;
  return 0;
}
