// Shim.cpp: recording (leader) and replaying (follower) one call, the
// divergence report, the end of a follower, and starting one.
//
// Record layout in the log (Log.h frames it):
//   RecHead                 number, sequence, compared argument values,
//                           result (kernel convention: -errno on failure),
//                           length of the bytes sent
//   bytes sent              the schema's in-items, concatenated
//   (u64 length, bytes)*    the schema's out-items, in order
// Descriptors a call created travel on the hand-over socket (Handover.h):
// RecHead.n_fds says how many the follower receives with the record.
// Control records (numbers from kCtlBase) are not calls: the leader's table
// handed over in one batch, and the switch at promotion.
#include "Shim.h"

#include "../Runtime.h"
#include "../Threads.h"
#include "../ToolApi.h"
#include "Children.h"
#include "EpollMap.h"
#include "Follower.h"
#include "Handover.h"
#include "Log.h"
#include "Raw.h"
#include "Rules.h"
#include "Sched.h"
#include "Signals.h"
#include "Sud.h"
#include "mvedsua/rules_abi.h"

#include <dirent.h>
#include <linux/futex.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <initializer_list>

namespace mvedsua {
namespace mve {

int g_mode = kOff;
__thread __attribute__((tls_model("initial-exec"))) bool g_shim_paused;

namespace {

// One lane per thread pair: the thread that runs main (lane 0) and each
// managed thread (lane = its slot, Threads.h), each with the update's pair
// of logs (the forward one, and the reverse one a promotion switches to).
// All are created before the fork; a thread joins its lane when it resumes
// after the fork (ShimJoinLane). The state of the calling thread's lane is
// thread-local: the log it writes or reads, its record count, its takeover
// context.
#define MVEDSUA_TLS __thread __attribute__((tls_model("initial-exec")))
struct LanePair {
  Log *fwd, *rev;
};
LanePair g_lanes[kMaxLanes];
int g_n_lanes;
// Which lane each slot's thread records or replays, and the other way round
// (ShimSlotOfLane). A slot that a thread which ended left free keeps its old
// lane until the next update: the follower's thread that had it may still
// be reading it. The leader makes new lanes one at a time (g_new_lane_lock).
constexpr int kMaxSlots = 256;
int16_t g_lane_of_slot[kMaxSlots];
int16_t g_slot_of_lane[kMaxLanes];
int g_new_lane_lock;
bool g_reversed; // a promotion switched every lane to its reverse log
// The update is over but other threads may still look at lane 0 (the order
// of calls, kept there): its logs stay mapped until the next update's
// ShimNewLanes, and ShimLog() says there is none.
bool g_lanes_forgotten;
// A follower with threads took over (or came to lead alone): every lane
// was drained, and a thread still waiting in its lane runs for real.
bool g_lanes_lead;

MVEDSUA_TLS Log *g_log;
MVEDSUA_TLS Log *g_other_log; // the lane's other log (the reverse direction)
MVEDSUA_TLS uint64_t g_seq;   // leader: records appended; follower: replayed
MVEDSUA_TLS int t_lane = -1;  // the calling thread's lane, -1 for none
MVEDSUA_TLS bool t_reversed;  // the direction of the logs it uses
// Leader: the order number a call took before it was made (NumberBefore: a
// close, or a call that publishes).
MVEDSUA_TLS uint64_t t_pre_order;
pid_t g_leader_pid;      // follower: whom it follows
pid_t g_follower_pid;    // leader: its follower, until reaped
int g_exit_status = -1;  // the status an exit call was made with
bool g_exit_logged;      // exit_group recorded (leader) or replayed (follower)
char g_summary_path[512]; // follower: MVEDSUA_MVE_SUMMARY
// Leader: appends left before the next look at the follower (Follower.cpp);
// a counter, so the append path reads no clock.
constexpr int kTickEvery = 64;
MVEDSUA_TLS int g_tick = kTickEvery;
// Follower: set until the backlog first falls to the caught-up level.
MVEDSUA_TLS bool g_catching_up;
// Follower that takes over when it finds its leader wrong (the old version
// following the new one): a divergence unwinds to the replaying call, which
// then runs for real.
bool g_takeover_on_divergence;
bool g_child_follower; // follows a child of the leader (Children.h)
// Follower: how long a thread waits for the calls before its own (lanes)
// with none done meanwhile; the log counts the waits that ran out.
constexpr long kOrderWaitMs = 200;
// The calls of all threads are replayed in the leader's order
// (docs/threads.md) unless MVEDSUA_MVE_ORDER_LANES=0: then each follower
// thread replays its lane at its own pace, and only the descriptor table's
// changes keep their order across threads.
int g_order_lanes = -1;
bool OrderLanes() { return EnvOn("MVEDSUA_MVE_ORDER_LANES", &g_order_lanes); }
bool g_order_all; // this update's: an ordered retry (ShimOrderAllCalls)
// A follower with threads runs them with a short slice (Sched.h) while it
// follows; the slice it set, 0 when none.
uint64_t g_follower_slice_ns;

// The log that keeps the order of calls across lanes (lane 0's, in the
// current direction); mapped until the next update (g_lanes_forgotten).
Log *OrderLog() {
  if (!g_n_lanes)
    return nullptr;
  return g_reversed ? g_lanes[0].rev : g_lanes[0].fwd;
}
MVEDSUA_TLS jmp_buf g_takeover_jmp;
MVEDSUA_TLS int64_t g_takeover_sent = -1; // what the diverging call sent, if
                                          // it only sent

DivergenceReport *Report() {
  return static_cast<DivergenceReport *>(LogUserArea(g_log));
}

// ---- leader ---------------------------------------------------------------

void AddLen(void *ctx, const void *, uint64_t n) {
  *static_cast<uint64_t *>(ctx) += n;
}
void AddOutLen(void *ctx, void *, uint64_t n) {
  *static_cast<uint64_t *>(ctx) += 8 + n;
}

struct Writer {
  Log *log;
  uint64_t cursor;
};
void PutIn(void *ctx, const void *p, uint64_t n) {
  Writer *w = static_cast<Writer *>(ctx);
  LogPut(w->log, &w->cursor, p, n);
}
void PutOut(void *ctx, void *p, uint64_t n) {
  Writer *w = static_cast<Writer *>(ctx);
  LogPut(w->log, &w->cursor, &n, 8);
  LogPut(w->log, &w->cursor, p, n);
}

// The follower is gone or the bound was reached: the leader goes on alone.
void LeaderAlone() {
  __atomic_store_n(&g_mode, kOff, __ATOMIC_RELAXED);
  SudDisarm();
  if (LogGetState(g_log) == kLogAbandoned && g_follower_pid > 0)
    RawSyscall(SYS_kill, g_follower_pid, SIGKILL);
  LeaderLostFollower(); // reaped and reported at the next update point
  ChildPairsEnd();
  SigStop(); // last: a signal noted meanwhile runs the program's handler now
}

// ---- follower -------------------------------------------------------------

// A follower cloned as the leader's sibling (CLONE_PARENT, under the
// supervisor) watches a pidfd of the leader: readable once it has ended.
int g_leader_pidfd = -1;

bool LeaderAlive(void *) {
  if (__atomic_load_n(&g_lanes_lead, __ATOMIC_ACQUIRE))
    return false; // this process leads: a thread still waiting runs for real
  if (g_leader_pidfd >= 0) {
    struct pollfd p = {g_leader_pidfd, POLLIN, 0};
    return RawSyscall(SYS_poll, long(&p), 1, 0) == 0;
  }
  if (g_leader_pidfd == kNoLeaderPidfd) // cloned, no pidfd_open (< 5.3)
    return RawSyscall(SYS_kill, g_leader_pid, 0) == 0;
  return RawSyscall(SYS_getppid) == g_leader_pid &&
         RawSyscall(SYS_kill, g_leader_pid, 0) == 0;
}

void WriteSummary(const char *line) {
  if (!g_summary_path[0])
    return;
  long fd = RawSyscall(SYS_openat, AT_FDCWD, long(g_summary_path),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  RawWriteAll(int(fd), line, strlen(line));
  RawSyscall(SYS_close, fd);
}

[[noreturn]] void FollowerExit(int status, const char *why) {
  char line[256];
  snprintf(line, sizeof line, "follower: %s after %llu records\n", why,
           (unsigned long long)g_seq);
  WriteSummary(line);
  FollowerNoteExit(status);
  LogCloseReader(g_log);
  for (;;)
    RawSyscall(SYS_exit_group, status);
}

int FormatArgs(char *out, size_t size, long nr, const int64_t v[6]) {
  const Spec &spec = SpecOf(nr);
  int last = -1;
  for (int i = 0; i < 6; ++i)
    if (spec.args[i].kind != kX)
      last = i;
  int n = snprintf(out, size, "%s(", SyscallName(nr));
  for (int i = 0; i <= last && n < int(size); ++i) {
    ArgKind k = spec.args[i].kind;
    const char *sep = i ? ", " : "";
    if (k == kS || k == kLenPtr || k == kX || k == kFcntlArg || k == kIoctlArg)
      n += snprintf(out + n, size - n, "%s%lld", sep, (long long)v[i]);
    else
      n += snprintf(out + n, size - n, "%s%s", sep, v[i] ? "ptr" : "NULL");
  }
  if (n < int(size))
    n += snprintf(out + n, size - n, ")");
  return n;
}

int FormatBytes(char *out, size_t size, const uint8_t *b, uint32_t n) {
  int k = snprintf(out, size, "\"");
  for (uint32_t i = 0; i < n && k < int(size); ++i)
    k += snprintf(out + k, size - k, (b[i] >= 32 && b[i] < 127 && b[i] != '"' &&
                                      b[i] != '\\') ? "%c" : "\\x%02x", b[i]);
  if (k < int(size))
    k += snprintf(out + k, size - k, "\"");
  return k;
}

const char *KindText(uint32_t kind) {
  switch (kind) {
  case kDivCall: return "a different system call";
  case kDivArgument: return "an argument differs";
  case kDivBytes: return "the bytes sent differ";
  case kDivLength: return "one sent more bytes than the other";
  case kDivOutput: return "an output does not fit";
  case kDivExtra: return "the follower made a call after the leader's last";
  case kDivSignal: return "the leader handled a signal the follower cannot";
  default: return "the leader made a call the follower did not";
  }
}

// The follower's memory of what each descriptor last gave it (the first
// bytes of its last replayed read), for divergence reports. Per thread, a
// small table by descriptor number: a report needs the request its thread
// just read.
constexpr int kLastReads = 64;
constexpr uint32_t kLastReadBytes = 48;
struct LastRead {
  int fd;
  uint32_t len;
  uint8_t bytes[kLastReadBytes];
};
MVEDSUA_TLS LastRead t_last_reads[kLastReads];

bool SendsOnFd(long nr) {
  return nr == SYS_write || nr == SYS_sendto || nr == SYS_writev ||
         nr == SYS_sendmsg || nr == SYS_pwrite64;
}

const LastRead *FindLastRead(int fd) {
  const LastRead &l = t_last_reads[unsigned(fd) % kLastReads];
  return l.len && l.fd == fd ? &l : nullptr;
}

// After a replayed read of `ret` bytes into a plain buffer (read, recv,
// recvfrom, pread): its first bytes.
void NoteLastRead(const CallView &c, int64_t ret) {
  if (ret <= 0 || !(c.nr == SYS_read || c.nr == SYS_recvfrom ||
                    c.nr == SYS_pread64) || !c.a[1])
    return;
  LastRead &l = t_last_reads[unsigned(c.a[0]) % kLastReads];
  l.fd = int(c.a[0]);
  l.len = uint32_t(ret < kLastReadBytes ? ret : kLastReadBytes);
  memcpy(l.bytes, reinterpret_cast<const void *>(c.a[1]), l.len);
}

void FormatReport(DivergenceReport *r) {
  char la[256], fa[256], lb[80], fb[80];
  int ln = FormatArgs(la, sizeof la - 32, r->leader_nr, r->leader_args);
  snprintf(la + ln, sizeof la - ln, " = %lld", (long long)r->leader_ret);
  FormatArgs(fa, sizeof fa, r->follower_nr, r->follower_args);
  char thread[96] = "";
  if (t_lane > 0)
    snprintf(thread, sizeof thread, " of thread %d (%s)", t_lane,
             ThreadName(ShimSlotOfLane(t_lane)));
  int n = snprintf(r->text, sizeof r->text,
                   "divergence at record %llu%s: %s\n  leader:   %s\n"
                   "  follower: %s\n",
                   (unsigned long long)r->record, thread, KindText(r->kind),
                   r->leader_nr >= 0 ? la : "(no call: the leader exited)",
                   r->follower_nr >= 0 ? fa : "(no call: the follower exited)");
  if (r->kind == kDivArgument)
    n += snprintf(r->text + n, sizeof r->text - n, "  argument %d: leader %lld, follower %lld\n",
                  r->arg, (long long)r->leader_args[r->arg],
                  (long long)r->follower_args[r->arg]);
  if (r->kind == kDivBytes || r->kind == kDivLength) {
    FormatBytes(lb, sizeof lb, r->leader_bytes, r->n_leader_bytes);
    FormatBytes(fb, sizeof fb, r->follower_bytes, r->n_follower_bytes);
    n += snprintf(r->text + n, sizeof r->text - n,
                  "  sent %llu bytes (leader) vs %llu (follower); first "
                  "difference at byte %llu: leader %s, follower %s\n",
                  (unsigned long long)r->leader_len,
                  (unsigned long long)r->follower_len,
                  (unsigned long long)r->offset, lb, fb);
  }
  // What the peer asked, for a reply that differs: the request names the
  // command (a RESP array, an HTTP request line...).
  const LastRead *last = r->follower_nr >= 0 && SendsOnFd(r->follower_nr)
                             ? FindLastRead(int(r->follower_args[0]))
                             : nullptr;
  if (last && n > 0 && n < int(sizeof r->text)) {
    char req[4 * kLastReadBytes + 3];
    FormatBytes(req, sizeof req, last->bytes, last->len);
    snprintf(r->text + n, sizeof r->text - n,
             "  last bytes read from descriptor %d before it: %s\n", last->fd,
             req);
  }
}

[[noreturn]] void Diverge(DivergenceReport *r) {
  r->follower_pid = int32_t(RawSyscall(SYS_getpid));
  r->record = g_seq;
  if (r->kind != kDivRule && r->kind != kDivSignal &&
      r->kind != kDivEpoll) // these come with a text
    FormatReport(r);
  if (g_rules)
    RulesAnnotate(r->text, sizeof r->text);
  const char *stack = FollowerNoteStack(); // before the leader reads the kind
  __atomic_store_n(&Report()->kind, r->kind, __ATOMIC_RELEASE);
  if (g_child_follower) { // no supervisor reads this one's summary
    char line[sizeof r->text + 3200], head[64];
    snprintf(head, sizeof head, "mvedsua: the follower of child %d diverged: ",
             int(g_leader_pid));
    int n = FormatReportWithStack(line, sizeof line, head, r->text, stack);
    RawWriteAll(2, line, uint64_t(n < int(sizeof line) ? n : sizeof line - 1));
  }
  // The new leader's bytes went out already: a call that only sent
  // different bytes is not made again (the peer would get both); any other
  // call runs for real.
  g_takeover_sent = r->kind == kDivBytes || r->kind == kDivLength
                        ? int64_t(r->follower_len) : -1;
  if (g_takeover_on_divergence && FollowerTakeOver(kTakeOverDiverged))
    longjmp(g_takeover_jmp, 1);
  char line[160];
  snprintf(line, sizeof line, "follower: diverged at record %llu (%s)\n",
           (unsigned long long)g_seq,
           SyscallName(r->follower_nr >= 0 ? r->follower_nr : r->leader_nr));
  WriteSummary(line);
  FollowerNoteExit(MVEDSUA_MVE_EXIT_DIVERGED);
  LogCloseReader(g_log);
  for (;;)
    RawSyscall(SYS_exit_group, MVEDSUA_MVE_EXIT_DIVERGED);
}

// A divergence no call pair describes (a signal the follower cannot handle,
// a thread started in one process only): the report is its text.
[[noreturn]] __attribute__((format(printf, 1, 2))) void
DivergeWith(const char *fmt, ...) {
  DivergenceReport *r = Report();
  memset(r, 0, sizeof *r);
  r->kind = kDivSignal; // formatted already: Diverge keeps the text
  r->leader_nr = r->follower_nr = -1;
  int n = snprintf(r->text, sizeof r->text, "divergence at record %llu: ",
                   (unsigned long long)g_seq);
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(r->text + n, sizeof r->text - size_t(n), fmt, ap);
  va_end(ap);
  if (n < int(sizeof r->text) - 1)
    snprintf(r->text + n, sizeof r->text - size_t(n), "\n");
  Diverge(r);
}

DivergenceReport *StartReport(uint32_t kind, const RecHead *h,
                              const CallView *c) {
  DivergenceReport *r = Report();
  memset(r, 0, sizeof *r);
  r->kind = kind;
  r->leader_nr = h ? int32_t(h->nr) : -1;
  if (h) {
    memcpy(r->leader_args, h->args, sizeof h->args);
    r->leader_ret = h->ret;
  }
  r->follower_nr = c ? int32_t(c->nr) : -1;
  if (c)
    CompareValues(*c, r->follower_args);
  return r;
}

// A control record between two calls. False when this process leads now.
// A signal's handler runs later (RunRecordedSignals), outside the reader.
bool Control(const RecHead &h) {
  const char *why = nullptr;
  if (h.nr == kCtlTable) {
    // After every descriptor change the threads made before it (OrderLog).
    ShimOrderWait(h);
    why = HandoverReceiveTable(h.n_fds);
    ShimOrderDone(h);
  }
  if (h.nr == kCtlEpollMap)
    EpollReceiveMap(h);
  if (h.nr == kCtlChildLog)
    ChildNoteLog(int(h.args[0]));
  if (h.nr == kCtlNewLane) // the follower's program did not start it here
    DivergeWith("the leader started a thread (lane %lld) here; the follower "
                "made a call instead", (long long)h.args[0]);
  if (h.nr == kCtlSignal) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    LogRead(g_log, &info, h.in_len < sizeof info ? h.in_len : sizeof info);
    SigNoteRecorded(int(h.args[0]), &info);
  }
  LogFinishRecord(g_log);
  if (why)
    FollowerAbort(why);
  if (h.nr == kCtlSwitch)
    return t_lane > 0 ? !FollowerLaneSwitchToLeader()
                      : !FollowerSwitchToLeader(int(h.args[0]));
  return true;
}

// The handlers of the signals the leader delivered here, in the follower's
// program. Their own calls are replayed (nested in the call that read the
// records), so the takeover point of the call that read them is kept.
void RunRecordedSignals() {
  jmp_buf saved;
  memcpy(saved, g_takeover_jmp, sizeof saved);
  char why[256];
  bool ok = SigRunRecorded(why, sizeof why);
  memcpy(g_takeover_jmp, saved, sizeof saved);
  if (!ok)
    DivergeWith("%s", why);
}

// Managed threads join their lane when they go on after an update stopped
// them (Threads.h).
__attribute__((constructor)) void HookLanes() {
  SetThreadResumeHook(ShimJoinLane);
}

// Waits for the next call's record. No record: the leader ended, vanished
// or the log was abandoned; `c` is the follower's call that found none (or
// null). False when this process took over instead (the call then runs for
// real).
bool NextRecord(RecHead *h, const CallView *c) {
  for (;;) {
    int64_t len = LogNext(g_log, LeaderAlive, nullptr);
    if (len == -2 && FollowerTakeOver(kTakeOverLeaderGone))
      return false;
    if (len == -2)
      FollowerExit(MVEDSUA_MVE_EXIT_LEADER_GONE, "the leader vanished");
    if (len < 0 && LogGetState(g_log) == kLogAbandoned)
      FollowerExit(MVEDSUA_MVE_EXIT_ABANDONED, "the log reached its bound");
    if (len < 0 && FollowerTakeOver(kTakeOverYielded))
      return false;
    if (len < 0)
      Diverge(StartReport(kDivExtra, nullptr, c));
    LogRead(g_log, h, sizeof *h);
    if (h->nr < kCtlBase)
      return true;
    if (!Control(*h))
      return false;
    if (__builtin_expect(SigRecordedPending(), 0))
      RunRecordedSignals();
  }
}

struct Comparer {
  CallView *c;
  const RecHead *h;
  uint64_t own_len;
  uint64_t limit; // bytes both sent
  uint64_t done;
};

[[noreturn]] void BytesDiffer(Comparer *k, uint32_t kind, uint64_t at,
                              const uint8_t *mine, uint64_t n) {
  DivergenceReport *r = StartReport(kind, k->h, k->c);
  r->leader_len = k->h->in_len;
  r->follower_len = k->own_len;
  r->offset = at;
  r->n_leader_bytes = uint32_t(LogPeek(g_log, 0, r->leader_bytes, 16));
  r->n_follower_bytes = uint32_t(n < 16 ? n : 16);
  memcpy(r->follower_bytes, mine, r->n_follower_bytes);
  Diverge(r);
}

void CompareIn(void *ctx, const void *p, uint64_t n) {
  Comparer *k = static_cast<Comparer *>(ctx);
  const uint8_t *b = static_cast<const uint8_t *>(p);
  if (k->done >= k->limit)
    return;
  uint64_t m = k->limit - k->done < n ? k->limit - k->done : n;
  int64_t off = LogCompare(g_log, b, m);
  if (off >= 0) {
    LogSkip(g_log, uint64_t(off));
    BytesDiffer(k, kDivBytes, k->done + uint64_t(off), b + off, m - uint64_t(off));
  }
  k->done += m;
  if (m < n) // the follower sent more than the leader
    BytesDiffer(k, kDivLength, k->done, b + m, n - m);
}

void CopyOut(void *ctx, void *p, uint64_t n) {
  Comparer *k = static_cast<Comparer *>(ctx);
  uint64_t len;
  LogRead(g_log, &len, 8);
  if (len != n)
    Diverge(StartReport(kDivOutput, k->h, k->c));
  LogRead(g_log, p, n);
}

// Call, then bytes sent, then scalars: when a buffer's length differs the
// bytes say more than the length argument does.
void CompareCall(CallView &c, const RecHead &h) {
  if (h.nr != uint32_t(c.nr))
    Diverge(StartReport(kDivCall, &h, &c));
  uint64_t own = 0;
  VisitIn(c, AddLen, &own);
  Comparer k = {&c, &h, own, own < h.in_len ? own : h.in_len, 0};
  VisitIn(c, CompareIn, &k);
  if (own < h.in_len) // the leader sent more
    BytesDiffer(&k, kDivLength, own, nullptr, 0);
  int64_t mine[6];
  CompareValues(c, mine);
  for (int i = 0; i < 6; ++i)
    if (mine[i] != h.args[i]) {
      DivergenceReport *r = StartReport(kDivArgument, &h, &c);
      r->arg = i;
      Diverge(r);
    }
}

// Follower: the next record that is a call or the control record `wanted`
// into *h, the other control records taken as usual. kNextEnd: the log
// ended (the leader ended or left it); kNextLeads: a promotion made this
// process the leader meanwhile.
enum NextOf { kNextFound, kNextEnd, kNextLeads };
NextOf NextCallOr(uint32_t wanted, RecHead *h) {
  for (;;) {
    if (LogNext(g_log, LeaderAlive, nullptr) < 0)
      return kNextEnd;
    LogRead(g_log, h, sizeof *h);
    if (h->nr < kCtlBase || h->nr == wanted)
      return kNextFound;
    if (!Control(*h))
      return kNextLeads;
  }
}

// ---- the end --------------------------------------------------------------

void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  RawSyscall(SYS_nanosleep, long(&ts), 0);
}

long WaitMs() {
  const char *s = getenv("MVEDSUA_MVE_FOLLOWER_WAIT_MS");
  return s && *s ? atol(s) : 10000;
}

// How the follower ended, as one report for stderr (later: status).
int DescribeEnd(char *line, size_t size, int status, long waited) {
  LogStats st;
  LogGetStats(g_log, &st);
  if (int n = DescribeUpdateFollowerEnd(line, size, status, g_follower_pid))
    return n;
  if (WIFEXITED(status) && WEXITSTATUS(status) == MVEDSUA_MVE_EXIT_DIVERGED)
    return snprintf(line, size, "mvedsua: follower %d diverged: %s",
                    g_follower_pid, Report()->text);
  if (st.state == kLogAbandoned)
    return snprintf(line, size,
                    "mvedsua: follower %d abandoned: the log reached its bound "
                    "after %llu records (%llu of them replayed); the leader "
                    "went on alone\n",
                    g_follower_pid, (unsigned long long)st.records_appended,
                    (unsigned long long)st.records_consumed);
  return snprintf(line, size,
                  "mvedsua: follower %d ended (%s %d): %llu of %llu records "
                  "replayed, peak backlog %llu bytes, ended %ld ms after the "
                  "leader\n",
                  g_follower_pid, WIFEXITED(status) ? "exit" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                  (unsigned long long)st.records_consumed,
                  (unsigned long long)st.records_appended,
                  (unsigned long long)st.peak_backlog_bytes, waited);
}

// Leader: the follower has all it will get; wait for it (bounded) and say
// how it ended, as the supervisor will in status.
void LeaderFinish() {
  ChildPassUp(true); // while this process still records
  __atomic_store_n(&g_mode, kOff, __ATOMIC_RELAXED);
  SudDisarm();
  if (!g_log)
    return; // a multi-version update's follower was reaped and its log freed
  for (int k = 0; k < g_n_lanes; ++k) // the other threads end with this one
    LogCloseWriter(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd);
  if (g_follower_pid <= 0)
    return;
  int status = 0;
  long waited = 0, limit = WaitMs();
  while (WaitFollower(g_follower_pid, &status, WNOHANG) == 0) {
    if (waited >= limit) {
      RawSyscall(SYS_kill, g_follower_pid, SIGKILL);
      WaitFollower(g_follower_pid, &status, 0);
      break;
    }
    SleepMs(5);
    waited += 5;
  }
  char line[8192];
  int n = DescribeEnd(line, sizeof line, status, waited);
  RawWriteAll(2, line, uint64_t(n < int(sizeof line) ? n : sizeof line - 1));
  g_follower_pid = 0;
  LeaderExited(status);
}

// Follower: its program is done; the leader must have nothing left either.
[[noreturn]] void FollowerFinish(int status) {
  if (g_rules)
    RulesFinish();
  RecHead h;
  int64_t len;
  while ((len = LogNext(g_log, LeaderAlive, nullptr)) >= 0) {
    LogRead(g_log, &h, sizeof h);
    if (h.nr < kCtlBase)
      Diverge(StartReport(kDivNone, &h, nullptr));
    LogFinishRecord(g_log); // the leader's table: no call left to take it
  }
  if (len == -2)
    FollowerExit(MVEDSUA_MVE_EXIT_LEADER_GONE, "the leader vanished");
  char why[64];
  snprintf(why, sizeof why, "replayed everything, exit status %d", status);
  FollowerExit(status, why);
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

bool CreateLog() {
  char err[256];
  if (!ShimNewLanes(1, LogOptionsFromEnv(), err, sizeof err)) {
    mvedsua::Report("error: cannot start a follower: %s", err);
    return false;
  }
  return true;
}

} // namespace

// ---- what Follower.cpp drives ------------------------------------------------

namespace {

void DestroyLanes(int from) {
  for (int k = from; k < g_n_lanes; ++k)
    for (Log **l : {&g_lanes[k].fwd, &g_lanes[k].rev}) {
      if (*l)
        LogDestroy(*l);
      *l = nullptr;
    }
  g_n_lanes = from < g_n_lanes ? from : g_n_lanes;
}

// Points the calling thread at lane k's logs, in the current direction.
void UseLane(int k) {
  const LanePair &p = g_lanes[k];
  g_log = g_reversed ? p.rev : p.fwd;
  g_other_log = g_reversed ? p.fwd : p.rev;
  g_seq = 0;
  g_tick = kTickEvery;
  t_lane = k;
  t_reversed = g_reversed;
  HandoverUseLane(k);
}

} // namespace

bool ShimNewLog(const LogOptions &o, char *err, unsigned long size) {
  return ShimNewLanes(1, o, err, size);
}

bool ShimNewLanes(int n, const LogOptions &o, char *err, unsigned long size) {
  // Lanes of an earlier update whose threads might still have looked at
  // them are freed only now, with every other thread stopped.
  DestroyLanes(0);
  g_reversed = false;
  g_lanes_forgotten = false;
  __atomic_store_n(&g_lanes_lead, false, __ATOMIC_RELEASE);
  if (n > kMaxLanes) {
    snprintf(err, size, "%d threads: at most %d are followed", n, kMaxLanes);
    return false;
  }
  for (int16_t &lane : g_lane_of_slot)
    lane = -1;
  for (int k = 0; k < n; ++k) {
    g_lane_of_slot[k] = g_slot_of_lane[k] = int16_t(k);
    g_lanes[k].fwd = LogCreate(o, err, size);
    g_lanes[k].rev = g_lanes[k].fwd ? LogCreate(o, err, size) : nullptr;
    g_n_lanes = k + 1;
    if (!g_lanes[k].rev) {
      DestroyLanes(0);
      return false;
    }
  }
  UseLane(0);
  return true;
}

int ShimLaneCount() { return g_n_lanes; }

int ShimSlotOfLane(int lane) {
  return lane >= 0 && lane < g_n_lanes ? g_slot_of_lane[lane] : -1;
}

// A follower's threads get the short slice (Sched.h): every thread of the
// process the first time (a follower with threads; the first thread besides
// main's of one forked with one thread), the calling thread after (a thread
// that joins its lane), undone for it if the process came to lead meanwhile.
static void FollowWithShortSlice() {
  uint64_t ns = FollowerSliceNs();
  if (!ns)
    return;
  if (__atomic_exchange_n(&g_follower_slice_ns, ns, __ATOMIC_RELAXED) != ns)
    SchedSetProcessSlices(ns);
  else
    SchedSetOwnSlice(ns);
  if (__atomic_load_n(&g_mode, __ATOMIC_RELAXED) != kFollower)
    SchedSetOwnSlice(0);
}

void ShimJoinLane(int slot) {
  int mode = __atomic_load_n(&g_mode, __ATOMIC_ACQUIRE);
  int k = slot > 0 && slot < kMaxSlots ? g_lane_of_slot[slot] : -1;
  if (mode == kOff || k <= 0 || k >= g_n_lanes)
    return;
  UseLane(k);
  g_catching_up = mode == kFollower;
  if (mode == kFollower)
    RulesJoinLane(k); // its own matcher, when rules are in use
  if (mode == kFollower)
    FollowWithShortSlice();
  SudArm(); // per thread: the kernel arms the calling thread only
}

// Process-level: lane 0, the one whose user area holds the shared state.
Log *ShimLog() {
  if (g_n_lanes == 0 || g_lanes_forgotten)
    return nullptr;
  return g_reversed ? g_lanes[0].rev : g_lanes[0].fwd;
}

void ShimSwapLogs() {
  __atomic_store_n(&g_reversed, !g_reversed, __ATOMIC_RELEASE);
  Log *l = g_log;
  g_log = g_other_log;
  g_other_log = l;
  g_seq = 0;
  t_reversed = g_reversed;
}

void ShimUseOwnLane() {
  if (t_lane >= 0)
    UseLane(t_lane);
}

void ShimCloseWriters() {
  for (int k = 0; k < g_n_lanes; ++k)
    LogCloseWriter(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd);
}

uint64_t ShimBacklogOtherLanes() {
  uint64_t n = 0;
  for (int k = 0; k < g_n_lanes; ++k)
    if (k != t_lane)
      n += LogBacklogBytes(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd);
  return n;
}

void ShimLanesLead() {
  __atomic_store_n(&g_lanes_lead, true, __ATOMIC_RELEASE);
}
bool ShimLanesLeading() {
  return __atomic_load_n(&g_lanes_lead, __ATOMIC_ACQUIRE);
}

void ShimDescribeBacklog(char *out, unsigned long size) {
  unsigned long n = 0;
  out[0] = 0;
  for (int k = 0; k < g_n_lanes && n < size; ++k) {
    LogStats st;
    LogGetStats(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd, &st);
    uint64_t left = st.records_appended - st.records_consumed;
    if (!left)
      continue;
    char who[96];
    if (k == 0)
      snprintf(who, sizeof who, "the thread that runs main");
    else
      snprintf(who, sizeof who, "thread %d (%s)", k,
               ThreadName(ShimSlotOfLane(k)));
    n += unsigned(snprintf(out + n, size - n, "%s%s: %llu record%s",
                           n ? ", " : "", who, (unsigned long long)left,
                           left == 1 ? "" : "s"));
  }
}

uint64_t ShimBacklogBytes() {
  uint64_t n = 0;
  for (int k = 0; k < g_n_lanes; ++k)
    n += LogBacklogBytes(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd);
  return n;
}

void ShimLogStats(LogStats *sum) {
  memset(sum, 0, sizeof *sum);
  for (int k = 0; k < g_n_lanes; ++k) {
    LogStats st;
    LogGetStats(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd, &st);
    sum->records_appended += st.records_appended;
    sum->records_consumed += st.records_consumed;
    sum->bytes_appended += st.bytes_appended;
    sum->backlog_bytes += st.backlog_bytes;
    sum->peak_backlog_bytes += st.peak_backlog_bytes;
    sum->chunks_in_use += st.chunks_in_use;
    sum->file_bytes += st.file_bytes;
    sum->grow_count += st.grow_count;
    sum->order_timeouts += st.order_timeouts;
    if (k == 0 || st.state == kLogAbandoned)
      sum->state = st.state;
  }
}

void ShimCloseReaders() {
  for (int k = 0; k < g_n_lanes; ++k)
    LogCloseReader(g_reversed ? g_lanes[k].rev : g_lanes[k].fwd);
}

bool ShimAppendControlAll(uint32_t kind, int64_t arg0) {
  bool ok = true;
  for (int k = 1; k < g_n_lanes; ++k) {
    Log *l = g_reversed ? g_lanes[k].rev : g_lanes[k].fwd;
    RecHead h = {kind, 0, 0, {arg0}, 0, 0, 0};
    Piece p = {&h, sizeof h};
    ok = LogAppend(l, &p, 1) && ok;
  }
  return ok;
}

int ShimLane() { return t_lane; }
Log *ShimThreadLog() { return g_log; }
DivergenceReport *ShimLaneReport() { return g_log ? Report() : nullptr; }

bool ShimAppendControl(uint32_t kind, uint32_t n_fds, int64_t arg0,
                       const void *data, uint64_t len) {
  RecHead h = {kind, n_fds, g_seq, {arg0}, 0, len, 0};
  if (kind == kCtlTable && g_n_lanes > 1) // after every descriptor change
    h.order = LogOrderTake(OrderLog());
  Piece p[2] = {{&h, sizeof h}, {data, len}};
  bool ok = LogAppend(g_log, p, len ? 2 : 1);
  if (ok && h.order)
    LogOrderRecorded(OrderLog(), h.order);
  return ok;
}
uint64_t ShimSeq() { return g_seq; }
int ShimFollowerPid() { return g_follower_pid; }
// The report of the lane that diverged (each lane's follower thread writes
// its own log's area), else lane 0's.
DivergenceReport *ShimDivergence() {
  Log *first = ShimLog();
  if (!first)
    return nullptr;
  for (int k = 0; k < g_n_lanes; ++k) {
    Log *l = g_reversed ? g_lanes[k].rev : g_lanes[k].fwd;
    auto *r = static_cast<DivergenceReport *>(LogUserArea(l));
    if (__atomic_load_n(&r->kind, __ATOMIC_ACQUIRE))
      return r;
  }
  return static_cast<DivergenceReport *>(LogUserArea(first));
}

void ShimOrderAllCalls(bool on) { g_order_all = on; }
bool ShimOrdersAllCalls() { return g_order_all || OrderLanes(); }

void ShimScheduleAsLeader() {
  if (__atomic_exchange_n(&g_follower_slice_ns, 0, __ATOMIC_RELAXED))
    SchedSetProcessSlices(0);
}

void ShimLead(int follower) {
  ShimScheduleAsLeader();
  g_seq = 0;
  g_tick = kTickEvery;
  g_follower_pid = follower;
  SigLead();
  __atomic_store_n(&g_mode, kLeader, __ATOMIC_RELAXED);
  SudArm();
}

void ShimStopLeading() {
  if (__atomic_load_n(&g_mode, __ATOMIC_RELAXED) == kLeader)
    LeaderAlone();
}

void ShimFollow(int leader, int leader_pidfd, int direction) {
  g_seq = 0;
  g_leader_pid = leader;
  g_leader_pidfd = leader_pidfd;
  g_catching_up = true;
  const char *summary = getenv("MVEDSUA_MVE_SUMMARY");
  snprintf(g_summary_path, sizeof g_summary_path, "%s", summary ? summary : "");
  RulesActivate(direction); // the expected differences, if any were given
  SigFollow(leader);
  __atomic_store_n(&g_mode, kFollower, __ATOMIC_RELAXED);
  if (g_n_lanes > 1) // the threads that run now; the others as they join
    FollowWithShortSlice();
  SudArm();
}

namespace {

bool LeaderNewLane(int k, char *why, unsigned long size) {
  LanePair p = {};
  p.fwd = LogCreate(LogOptionsFromEnv(), why, size);
  p.rev = p.fwd ? LogCreate(LogOptionsFromEnv(), why, size) : nullptr;
  int fds[2] = {p.fwd ? LogFd(p.fwd) : -1, p.rev ? LogFd(p.rev) : -1};
  // The lane's hand-over socket too (when this update hands descriptors
  // over): its follower end goes with the announcement.
  int sent = p.rev && HandoverLanes() ? HandoverNewLane(k) : 0;
  if (sent < 0)
    snprintf(why, size, "its hand-over socket: %s", strerrorname_np(-sent));
  if (!p.rev || sent < 0 ||
      !ShimAppendControl(kCtlNewLane, uint32_t(sent), k, fds, sizeof fds)) {
    if (p.fwd)
      LogDestroy(p.fwd);
    if (p.rev)
      LogDestroy(p.rev);
    if (!why[0])
      snprintf(why, size, "the log is no longer active");
    return false;
  }
  g_lanes[k] = p;
  __atomic_store_n(&g_n_lanes, k + 1, __ATOMIC_RELEASE);
  return true;
}

Log *OpenLeaderLog(int fd, char *why, unsigned long size) {
  char path[48];
  snprintf(path, sizeof path, "/proc/%d/fd/%d", int(g_leader_pid), fd);
  long memfd = RawSyscall(SYS_openat, AT_FDCWD, long(path), O_RDWR | O_CLOEXEC);
  if (memfd < 0) {
    snprintf(why, size, "cannot open the leader's log %s: %s", path,
             strerrorname_np(int(-memfd)));
    return nullptr;
  }
  Log *log = LogOpen(int(memfd), why, size);
  if (!log)
    RawSyscall(SYS_close, memfd);
  return log;
}

// The follower's side: its program starts the thread where the leader's
// did, so the announcement is the next record of the calling thread's log
// (after control records, taken as usual).
// The lane is the one the leader announced: follower threads start their
// threads at their own pace, so lane k is made once the lanes before it
// are (a bounded wait, in the order the leader made them).
bool FollowerNewLane(int *lane, char *why, unsigned long size) {
  uint32_t held;
  if (RulesHoldsRecord(&held)) // the leader made that call before the start
    DivergeWith("the follower started a thread where the leader called %s",
                SyscallName(int(held)));
  RecHead h;
  NextOf next = NextCallOr(kCtlNewLane, &h);
  if (next != kNextFound) {
    snprintf(why, size, "%s", next == kNextEnd
                                  ? "the leader started no thread here"
                                  : "this process leads now");
    return false;
  }
  if (h.nr != kCtlNewLane) // the leader made a call where this one starts
    DivergeWith("the follower started a thread where the leader called %s",
                SyscallName(int(h.nr)));
  int fds[2] = {-1, -1};
  LogRead(g_log, fds, sizeof fds);
  LogFinishRecord(g_log);
  int k = int(h.args[0]);
  for (int waited = 0;
       k != __atomic_load_n(&g_n_lanes, __ATOMIC_ACQUIRE) && waited < 5000;
       ++waited)
    SleepMs(1);
  if (k != __atomic_load_n(&g_n_lanes, __ATOMIC_ACQUIRE) || k >= kMaxLanes) {
    snprintf(why, size, "the leader's new thread has lane %d, the lanes "
             "before it were not all made here", k);
    return false;
  }
  *lane = k;
  if (h.n_fds)
    if (const char *no = HandoverJoinLane(k))
      FollowerAbort(no);
  LanePair p = {OpenLeaderLog(fds[0], why, size), nullptr};
  p.rev = p.fwd ? OpenLeaderLog(fds[1], why, size) : nullptr;
  if (!p.rev) {
    if (p.fwd)
      LogDestroy(p.fwd);
    return false;
  }
  g_lanes[k] = p;
  __atomic_store_n(&g_n_lanes, k + 1, __ATOMIC_RELEASE);
  return true;
}

} // namespace

bool ShimLaneForNewThread(int slot, char *why, unsigned long size) {
  why[0] = 0;
  int mode = __atomic_load_n(&g_mode, __ATOMIC_ACQUIRE);
  if (mode == kOff) { // busy: the follower is applying the update
    snprintf(why, size, "the new version is being applied");
    return false;
  }
  if (g_reversed || slot <= 0 || slot >= kMaxSlots) {
    snprintf(why, size, "%s",
             g_reversed ? "the new version leads (stage updated-leader)"
                        : "its slot is out of range");
    return false;
  }
  // The leader numbers new lanes one at a time; a follower's thread makes
  // the lane its leader's announced, in the leader's order.
  bool leader = mode == kLeader;
  while (leader && __atomic_exchange_n(&g_new_lane_lock, 1, __ATOMIC_ACQUIRE))
    RawSyscall(SYS_sched_yield);
  int k = g_n_lanes;
  bool made = false;
  if (!leader)
    made = FollowerNewLane(&k, why, size);
  else if (k >= kMaxLanes)
    snprintf(why, size, "the update's %d lanes are taken", kMaxLanes);
  else
    made = LeaderNewLane(k, why, size);
  if (made) {
    g_slot_of_lane[k] = int16_t(slot);
    g_lane_of_slot[slot] = int16_t(k);
  }
  if (leader)
    __atomic_store_n(&g_new_lane_lock, 0, __ATOMIC_RELEASE);
  return made;
}

void ShimAdoptLog(Log *log) {
  DestroyLanes(0);
  g_reversed = false;
  g_lanes[0] = {log, nullptr};
  g_n_lanes = 1;
  UseLane(0);
}

bool ShimFollowsChild() { return g_child_follower; }

void ShimFollowChild(int leader, int leader_pidfd) {
  g_leader_pid = leader;
  g_leader_pidfd = leader_pidfd;
  g_child_follower = true;
  g_catching_up = false;
  g_takeover_on_divergence = false;
  g_summary_path[0] = 0;
  SigForkedChild(leader);
  RulesForkedChild();
  g_sud_armed = false; // not inherited by the fork
  SudArm();
}

void ShimForgetFollower() {
  SigStop();
  g_follower_pid = 0;
  // Other threads may still look at their lanes (they stop recording once
  // they see the reader gone) and at lane 0 (the order of calls): with
  // threads, every lane is freed at the next update's fork.
  ShimCloseReaders();
  g_log = g_other_log = nullptr;
  g_takeover_on_divergence = false;
  if (g_n_lanes > 1) { // lane 0 holds the order the other threads may read
    g_lanes_forgotten = true;
    return;
  }
  for (Log **l : {&g_lanes[0].fwd, &g_lanes[0].rev}) {
    if (*l)
      LogDestroy(*l);
    *l = nullptr;
  }
  g_n_lanes = 0;
}

void ShimTakeOverOnDivergence(bool on) { g_takeover_on_divergence = on; }

// ---- the shim's slow path ---------------------------------------------------

// With threads, the calls that change the descriptor table are replayed in
// the order they were made in the leader, whatever lane they are in: a
// follower thread that replayed the creation of descriptor 7 (and installed
// the leader's 7) before another replayed the close of the previous 7 would
// close the new one. A creation takes its number after its call (the number
// exists before the program sees the descriptor), a close before (it exists
// before the number can be reused); the table handed over takes one too.
// With every thread's calls ordered, a call that publishes (Publishes) is
// numbered before it is made too: what it hands over may make another
// thread's call return before this one does.
void NumberBefore(const CallView &c) {
  if (c.nr == SYS_close || c.nr == SYS_dup2 || c.nr == SYS_dup3)
    t_pre_order = LogOrderTake(OrderLog());
  else if ((g_order_all || OrderLanes()) && Publishes(c.nr))
    t_pre_order = LogOrderTake(OrderLog()) | kOrderPublish;
}

bool Prepare(CallView &c, long nr, long a0, long a1, long a2, long a3,
             long a4, long a5) {
  c.nr = nr;
  c.a[0] = a0, c.a[1] = a1, c.a[2] = a2, c.a[3] = a3, c.a[4] = a4, c.a[5] = a5;
  c.ret = 0;
  // A signal the leader noted is delivered here, before the call.
  if (__builtin_expect(__atomic_load_n(&g_sig_pending, __ATOMIC_RELAXED), 0))
    SigAtEntry();
  CaptureBefore(c);
  int mode = __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
  if (__builtin_expect(mode == kLeader && g_n_lanes > 1, 0)) {
    // A thread of a promoted follower that did not read its lane's switch
    // record (it made no call meanwhile; main's too, when another thread
    // made the process lead): its lane's log in the new direction. Its lane
    // was drained: the switch was all that was left.
    if (t_lane >= 0 && t_reversed != __atomic_load_n(&g_reversed,
                                                    __ATOMIC_ACQUIRE)) {
      FollowerAwaitSwitch(); // another thread may be making the process lead
      UseLane(t_lane);
    }
    NumberBefore(c);
  }
  return mode == kFollower;
}

void Record(CallView &c, long r) {
  int saved = errno;
  RecordRaw(c, r == -1 ? -saved : r);
  errno = saved;
}

void RecordRaw(CallView &c, long ret) {
  uint64_t pre_order = t_pre_order;
  t_pre_order = 0;
  if (__atomic_load_n(&g_mode, __ATOMIC_RELAXED) != kLeader)
    return; // the follower left while the call ran
  if (__builtin_expect(ret == -EINTR, 0) && WaitPointKicked(ret))
    return; // made again at once, unseen by the program
  c.ret = ret;
  int fds = HandoverSendNew(c, ret);
  if (fds < 0) {
    LeaderHandoverFailed(-fds);
    return;
  }
  RecHead h = {uint32_t(c.nr), uint32_t(fds), g_seq, {}, c.ret, 0, 0};
  CompareValues(c, h.args);
  if (__builtin_expect(c.nr == SYS_epoll_ctl, 0)) // not compared: EpollMap.h
    h.args[kEpollDataArg] = EpollCallData(c);
  VisitIn(c, AddLen, &h.in_len);
  uint64_t out_len = 0;
  VisitOut(c, AddOutLen, &out_len);
  Writer w = {g_log, 0};
  if (!LogBegin(g_log, sizeof h + h.in_len + out_len, &w.cursor)) {
    LeaderAlone();
    return;
  }
  h.order = pre_order;
  if (!h.order && g_n_lanes > 1 && HandoverCreates(c, ret))
    h.order = LogOrderTake(OrderLog()); // after its call returned
  else if (!h.order && g_n_lanes > 1 && (g_order_all || OrderLanes()) &&
           Receives(c.nr))
    h.order = LogOrderTaken(OrderLog()) | kOrderAfter;
  LogPut(g_log, &w.cursor, &h, sizeof h);
  VisitIn(c, PutIn, &w);
  VisitOut(c, PutOut, &w);
  LogCommit(g_log, sizeof h + h.in_len + out_len);
  if (h.order && !(h.order & kOrderAfter)) // a follower thread may wait for it
    LogOrderRecorded(OrderLog(), h.order & ~kOrderPublish);
  g_seq++;
  if (g_n_lanes > 1) // its call is in the log: it may be held there
    LeaderHoldIfAsked();
  if (__builtin_expect(--g_tick == 0, 0)) {
    g_tick = kTickEvery;
    LeaderTick();
    ChildPassUp(false);
  }
}

// The leader closed a descriptor (close, or dup2/dup3 over it): the
// follower closes its own copy if it holds one (Handover.cpp).
static void ReleaseClosedFd(const CallView &c, int64_t ret) {
  if (c.nr == SYS_close && (ret == 0 || ret == -EINTR))
    HandoverRelease(int(c.a[0]));
  else if ((c.nr == SYS_dup2 || c.nr == SYS_dup3) && ret >= 0 &&
           c.a[0] != c.a[1])
    HandoverRelease(int(c.a[1]));
}

// A follower that took over makes the call it was replaying itself (and
// records it when it now leads a follower of its own).
static long RunForReal(CallView &c) {
  if (c.nr == SYS_exit_group)
    return 0; // exit() goes on: its handlers, then the real end
  if (c.nr == SYS_mvedsua_shared_value) { // its own value now
    RecordRaw(c, c.a[0]);
    return c.a[0];
  }
  if (__atomic_load_n(&g_mode, __ATOMIC_RELAXED) == kLeader && g_n_lanes > 1)
    NumberBefore(c); // Prepare ran while this process followed
  long r = RawSyscall(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], c.a[5]);
  RecordRaw(c, r);
  return r;
}

long ReplayRaw(CallView &c) {
  // A follower that may come to lead (the switch of a promotion, a takeover
  // found deep in the replay or the rules' look-ahead) comes back here.
  if (__builtin_expect(g_takeover_on_divergence || g_rules != nullptr, 0) &&
      setjmp(g_takeover_jmp))
    return g_takeover_sent >= 0 ? long(g_takeover_sent) : RunForReal(c);
  if (__builtin_expect(g_rules != nullptr, 0)) {
    if (SigRecordedPending()) // read during the matcher's look-ahead
      RunRecordedSignals();
    long ret = RulesReplay(c);
    NoteLastRead(c, ret);
    return ret;
  }
  RecHead h;
  if (!NextRecord(&h, &c))
    return RunForReal(c);
  return ShimReplayRecord(c, h);
}

long ShimReplayRecord(CallView &c, const RecHead &rec) {
  RecHead h = rec;
  ShimOrderWait(h);
  EpollTakeLeaderData(h);
  CompareCall(c, h);
  c.ret = h.ret;
  Comparer k = {&c, &h, 0, 0, 0};
  VisitOut(c, CopyOut, &k);
  // All the record's effects (its descriptors, epoll registrations, closes)
  // before it counts as consumed: once a lane is drained, the thread that
  // makes the process lead may read lane 0's socket and remap the epoll
  // registrations (FollowerLaneSwitchToLeader).
  if (h.n_fds)
    if (const char *why = HandoverReceive(h.n_fds))
      FollowerAbort(why);
  NoteLastRead(c, h.ret);
  if (__builtin_expect(c.nr == SYS_wait4 || c.nr == SYS_waitid, 0))
    ChildReap(); // the program reaps its children: this process, its own
  ShimRecordDone(&c, h.ret);
  LogFinishRecord(g_log);
  ShimOrderDone(h);
  return long(h.ret);
}

// A record's place in the order across threads (RecHead.order), in the
// log of the record's direction (a promotion may have switched the
// process's since).
static Log *RecordOrderLog() {
  return t_reversed ? g_lanes[0].rev : g_lanes[0].fwd;
}

// A call that may have seen what another thread's call published waits
// until every call numbered before it returned in the leader is replayed:
// what that thread wrote to memory before it (a counter two workers share)
// is then there for this one, as it was in the leader.
void ShimOrderWait(const RecHead &h) {
  if (!h.order || (h.order & kOrderPublish))
    return;
  uint64_t n = h.order & kOrderAfter ? (h.order & ~kOrderAfter) + 1 : h.order;
  LogOrderWait(RecordOrderLog(), n, kOrderWaitMs);
}

void ShimOrderDone(const RecHead &h) {
  if (!h.order || (h.order & kOrderAfter))
    return;
  LogOrderDone(RecordOrderLog(), h.order & ~kOrderPublish, kOrderWaitMs);
}

void ShimRecordDone(const CallView *c, int64_t ret) {
  if (c)
    EpollReplayed(*c, ret); // may diverge: before g_seq moves on
  g_seq++;
  if (c)
    ReleaseClosedFd(*c, ret);
  if (__builtin_expect(g_catching_up, 0) && FollowerCheckCaughtUp())
    g_catching_up = false;
}

// The rules' matcher reads records itself: control records are taken here,
// and a switch or a takeover returns to the replaying call (ReplayRaw).
int64_t ShimWaitRecord(bool ahead) {
  for (;;) {
    int64_t len = LogNext(g_log, LeaderAlive, nullptr);
    if (len == -2 && FollowerTakeOver(kTakeOverLeaderGone))
      longjmp(g_takeover_jmp, 1);
    if (len == -2)
      FollowerExit(MVEDSUA_MVE_EXIT_LEADER_GONE, "the leader vanished");
    if (len < 0 && LogGetState(g_log) == kLogAbandoned)
      FollowerExit(MVEDSUA_MVE_EXIT_ABANDONED, "the log reached its bound");
    if (len < 0 && FollowerTakeOver(kTakeOverYielded))
      longjmp(g_takeover_jmp, 1);
    RecHead h;
    if (len < 0 || LogPeek(g_log, 0, &h, sizeof h) < sizeof h ||
        h.nr < kCtlBase)
      return len;
    // A thread the leader started after the calls a rule's left side has
    // matched so far: no call follows for that rule. The announcement stays
    // for the follower's own start of the thread.
    if (ahead && h.nr == kCtlNewLane)
      return -1;
    LogRead(g_log, &h, sizeof h);
    if (!Control(h))
      longjmp(g_takeover_jmp, 1);
    // A signal's handler runs where its record is, unless the matcher holds
    // records read ahead: then at the follower's next call.
    if (SigRecordedPending() && RulesIdle())
      RunRecordedSignals();
  }
}

void ShimDiverge(DivergenceReport *r) { Diverge(r); }

long Replay(CallView &c) {
  long ret = ReplayRaw(c);
  if (ret < 0) {
    errno = int(-ret);
    return -1;
  }
  return ret;
}

void OnExit(int status, bool run_handlers) {
  CallView c;
  bool follower = Prepare(c, SYS_exit_group, status, 0, 0, 0, 0, 0);
  g_exit_status = status;
  g_exit_logged = true;
  if (follower) {
    Replay(c);
    if (!run_handlers)
      FollowerFinish(status);
    return; // atexit handlers replay too; exit_group or the destructor ends
  }
  Record(c, 0);
  if (!run_handlers)
    LeaderFinish();
}

bool FollowerPending() { return g_follower_pid > 0; }

namespace {

long RawCall(long nr, const long a[6]) {
  return RawSyscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// The end of a process with SUD armed: after glibc's last stdio flush, which
// was trapped like any other call.
[[noreturn]] void TrappedExit(long status) {
  int mode = __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
  if (mode != kOff && !g_exit_logged)
    OnExit(int(status), false);
  if (mode == kLeader)
    LeaderFinish();
  if (mode == kFollower)
    FollowerFinish(int(status));
  FollowerNoteExit(int(status));
  for (;;)
    RawSyscall(SYS_exit_group, status);
}

// fork (clone without CLONE_VM) run from the handler: the child returns
// through the copied signal frame, without SUD (the kernel does not inherit
// it). A single-threaded leader's child leads a log pair of its own, and
// the follower forks a follower for it where it replays the fork
// (Children.h). Otherwise (no log for it, or more than one lane) the child
// is not followed and keeps nothing of the update: the logs of every lane
// are unmapped and their memfds closed, and so are the hand-over socket and
// the pidfds (ForgetUpdateInChild); otherwise a long-lived child (a session)
// would pin the log's memory, and the follower takes the leader's child pid
// without forking. Raw syscalls only: this is the SIGSYS handler, and
// glibc's fork holds its locks (malloc's) until the clone returned.
long TrappedFork(const long a[6]) {
  int mode = __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
  CallView c;
  Prepare(c, SYS_clone, a[0], 0, 0, 0, 0, 0);
  if (mode == kFollower) {
    long ret = ReplayRaw(c);
    return ChildFollowerFork(a, ret, g_leader_pid) ? 0 : ret;
  }
  Log *child_log = ChildLogBeforeFork();
  // Deferred signals are blocked across the clone: one sent to the child
  // before it has its program's handlers back waits in its kernel queue.
  uint64_t mask = SigForkBegin();
  long ret = RawCall(SYS_clone, a);
  if (ret == 0)
    g_new_lane_lock = 0; // another thread may have held it at the fork
  if (ret == 0 && child_log) {
    ChildForkedInChild(child_log); // its only lane now
    g_follower_pid = 0;            // the reader is not its child
    g_takeover_on_divergence = false;
    ForgetUpdateInChild();
    SigForkEnd(mask, true, true); // its signals at its own record boundaries
    g_sud_armed = false;
    SudArm();
    return 0;
  }
  if (ret == 0) {
    ChildForkedInChild(nullptr);
    __atomic_store_n(&g_mode, kOff, __ATOMIC_RELAXED);
    g_sud_armed = false;
    g_follower_pid = 0;
    DestroyLanes(0); // munmap and close, each log of each lane
    g_log = g_other_log = nullptr;
    t_lane = -1;
    g_reversed = false;
    g_takeover_on_divergence = false;
    ForgetUpdateInChild();
    SigForkEnd(mask, true); // the child's signals are its own
    return 0;
  }
  SigForkEnd(mask, false);
  ChildForkedInParent(child_log, ret);
  RecordRaw(c, ret);
  return ret;
}

// A program executed: the new image knows nothing of the update, so the
// process leaves multi-version execution. A leader closes its log first (it
// goes on unfollowed if the call fails); its follower, at the same call,
// finds the log closed and ends quietly instead of executing the program a
// second time. A follower that executes where its leader made another call
// diverged.
long TrappedExec(long nr, const long a[6], int mode) {
  if (mode == kLeader) {
    LeaderFinish();
    return RawCall(nr, a);
  }
  CallView c;
  Prepare(c, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (g_rules)
    RulesFinish(); // what the matcher holds must have been matched
  RecHead h;
  switch (NextCallOr(0, &h)) {
  case kNextEnd:
    FollowerExit(0, "the leader executed a program");
  case kNextLeads:
    return TrappedExec(nr, a, kLeader);
  case kNextFound:
    break;
  }
  Diverge(StartReport(kDivCall, &h, &c));
}

// pause and rt_sigsuspend wait for a signal: one delivered at their entry
// ends them at once (Signals.h).
__attribute__((noinline)) long TrappedWait(long nr, const long a[6],
                                           int mode) {
  CallView c;
  uint64_t delivered = g_sig_deliveries;
  Prepare(c, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (mode == kFollower)
    return ReplayRaw(c);
  uint64_t mask = 0;
  if (nr == SYS_rt_sigsuspend && a[0] && a[1] == 8)
    memcpy(&mask, reinterpret_cast<const void *>(a[0]), 8);
  long ret = g_sig_deliveries != delivered
                 ? -EINTR
                 : SigWait(nr, a, nr == SYS_rt_sigsuspend ? &mask : nullptr);
  RecordRaw(c, ret);
  return ret;
}

} // namespace

long TrapDispatch(long nr, const long a[6]) {
  switch (nr) {
  case SYS_rt_sigaction:
    return TrappedSigaction(a);
  case SYS_exit_group:
    TrappedExit(a[0]);
  case SYS_clone:
    if (!(a[0] & CLONE_VM))
      return TrappedFork(a);
    [[fallthrough]];
  // Threads, vfork/posix_spawn (CLONE_VM: cannot be run from a handler) and
  // io_uring (its I/O makes no syscalls to trap) are refused, identically in
  // both processes, while a follower exists.
  case SYS_clone3: case SYS_vfork: case SYS_io_uring_setup:
    return -ENOSYS;
  default:
    break;
  }
  int mode = __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
  if (mode == kOff && g_sud_armed)
    SudDisarm(); // a thread that still traps after its process stopped
  if ((nr == SYS_execve || nr == SYS_execveat) && mode != kOff &&
      !g_shim_paused)
    return TrappedExec(nr, a, mode);
  if (mode == kOff || g_shim_paused || SpecOf(nr).cls == kLocal) {
    if (__builtin_expect(nr == SYS_exit, 0))
      SigThreadEnds();
    long ret;
    while ((ret = RawCall(nr, a)) == -EINTR && SigRestartLocal(nr, ret)) {
    }
    return ret;
  }
  if (__builtin_expect(nr == SYS_pause || nr == SYS_rt_sigsuspend, 0))
    return TrappedWait(nr, a, mode);

  CallView c;
  Prepare(c, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (mode == kFollower)
    return ReplayRaw(c);
  long ret;
  while (SigRestart(nr, ret = RawCall(nr, a), false)) {
  }
  RecordRaw(c, ret);
  return ret;
}

} // namespace mve
} // namespace mvedsua

using namespace mvedsua::mve;

MVEDSUA_EXPORT int mvedsua_rt_mve_role(void) {
  return __atomic_load_n(&g_mode, __ATOMIC_RELAXED);
}

// Forks a follower of the calling process. Single-threaded programs only
// for now (one log per thread pair comes with multi-threading).
MVEDSUA_EXPORT int mvedsua_rt_mve_start_follower(void) {
  if (g_mode != kOff || g_follower_pid > 0) {
    errno = EBUSY;
    return -1;
  }
  if (CountThreads() != 1) {
    errno = ENOTSUP;
    return -1;
  }
  if (!CreateLog()) {
    errno = ENOMEM;
    return -1;
  }
  const char *summary = getenv("MVEDSUA_MVE_SUMMARY");
  snprintf(g_summary_path, sizeof g_summary_path, "%s", summary ? summary : "");
  fflush(nullptr); // nothing buffered may be written twice
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  g_seq = 0;
  if (pid == 0) {
    g_leader_pid = parent;
    SigFollow(parent);
    __atomic_store_n(&g_mode, kFollower, __ATOMIC_RELAXED);
    SudArm();
    return MVEDSUA_MVE_FOLLOWER;
  }
  g_follower_pid = pid;
  SigLead();
  __atomic_store_n(&g_mode, kLeader, __ATOMIC_RELAXED);
  SudArm();
  return MVEDSUA_MVE_LEADER;
}

// A value the calling thread read from memory that another thread writes
// (mvedsua.h): no system call shows it, yet the calls that follow depend on
// it. The leader records it in the thread's lane; the follower's thread
// takes the leader's instead of its own.
MVEDSUA_EXPORT long __mvedsua_rt_shared_value(long value) {
  if (__atomic_load_n(&g_mode, __ATOMIC_RELAXED) == kOff || g_shim_paused)
    return value;
  CallView c;
  if (Prepare(c, SYS_mvedsua_shared_value, value, 0, 0, 0, 0, 0))
    return ReplayRaw(c);
  RecordRaw(c, value);
  return value;
}

// The text of the follower's divergence report, "" when there is none.
MVEDSUA_EXPORT const char *mvedsua_rt_mve_divergence(void) {
  DivergenceReport *r = ShimDivergence();
  if (!r || !__atomic_load_n(&r->kind, __ATOMIC_ACQUIRE))
    return "";
  return r->text;
}

// At the end of exit(): after the program's atexit handlers (whose calls
// were recorded or replayed) and before glibc's last stdio flush, which goes
// to the kernel through glibc's internal symbols, unseen by the leader's
// shim: the follower must not make it for real.
// With SUD armed the end comes at the trapped exit_group instead, after that
// flush, which is then compared like everything else.
__attribute__((destructor(101))) static void MveAtExit() {
  if (g_sud_armed)
    return;
  if (g_mode == kLeader || g_follower_pid > 0)
    LeaderFinish();
  else if (g_mode == kFollower)
    FollowerFinish(g_exit_status < 0 ? 0 : g_exit_status);
}
