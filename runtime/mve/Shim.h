// Shim.h: the multi-version layer's modes and the slow path of the shim.
//
// The interposed libc functions (Interpose.cpp) read one word, `g_mode`;
// while it is kOff (no follower exists) they call the real function and
// nothing else. In kLeader they call it and record the call; in kFollower
// they replay the next record instead of calling the kernel.
#ifndef MVEDSUA_MVE_SHIM_H
#define MVEDSUA_MVE_SHIM_H

#include "Schema.h"

#include <stdint.h>

namespace mvedsua {
namespace mve {

enum Mode : int { kOff = 0, kLeader = 1, kFollower = 2 };

extern int g_mode;
// The calling thread is inside the runtime (an update point): its calls are
// the runtime's own, neither recorded nor replayed, while the process's
// other threads go on in `g_mode`.
extern __thread __attribute__((tls_model("initial-exec"))) bool g_shim_paused;

inline bool ShimOff() {
  return __builtin_expect(__atomic_load_n(&g_mode, __ATOMIC_RELAXED) == kOff,
                          1) ||
         g_shim_paused;
}

// A call about to be made in leader or follower mode: fills `c` and
// captures what the kernel may overwrite. True in the follower, which then
// calls Replay instead of the real function.
bool Prepare(CallView &c, long nr, long a0, long a1, long a2, long a3,
             long a4, long a5);
// Follower: the recorded result in libc's convention (-1 and errno).
long Replay(CallView &c);
// Leader: records the call that returned `r` (libc's convention, errno
// untouched on return).
void Record(CallView &c, long r);
// The same in the kernel's convention (-errno), for trapped calls.
long ReplayRaw(CallView &c);
void RecordRaw(CallView &c, long ret);
// A syscall trapped by Syscall User Dispatch (Sud.cpp): recorded, replayed
// or run locally by its schema; returns the value for rax.
long TrapDispatch(long nr, const long a[6]);
long TrappedSigaction(const long a[6]); // Sud.cpp
// exit/_exit/_Exit: recorded (leader) or compared (follower) as
// exit_group(status); the follower then ends here.
void OnExit(int status, bool run_handlers);
// A follower was started and not yet reaped (the leader may be OFF again
// after its follower left, and must still reap and report it at exit).
bool FollowerPending();

// What Follower.cpp drives (a follower forked for an update).
struct Log;
struct LogOptions;
struct LogStats;
// Creates the pair of logs of one update before the fork: the leader's, and
// the one the new version records into once promoted.
bool ShimNewLog(const LogOptions &o, char *err, unsigned long size);
// The same for a process with managed threads: lanes 0 (main) to n - 1
// (Threads.h's slots), each a pair of logs. The calling thread uses lane 0.
constexpr int kMaxLanes = 64;
bool ShimNewLanes(int n, const LogOptions &o, char *err, unsigned long size);
int ShimLaneCount();
// A managed thread resuming after the fork (leader) or after its relaunch
// (follower) records or replays its lane from there; SUD armed for it.
void ShimJoinLane(int slot);
int ShimLane(); // the calling thread's lane, -1 for none
// The slot (Threads.h) of the thread a lane is for: the lanes made at a fork
// are the slots' own (lane k for slot k); a thread started during the
// update takes the next lane, whatever its slot.
int ShimSlotOfLane(int lane);
// Lane 0's log: the process-level one (its user area holds the shared
// state of the update).
Log *ShimLog();
// Over every lane: the backlog, the log figures, and the end of the reader.
uint64_t ShimBacklogBytes();
// The same over every lane but the calling thread's.
uint64_t ShimBacklogOtherLanes();
// The lanes whose records the follower has not all read, for a report:
// "thread 2 (pool.c/worker_main): 1 record" (lane 0: "the thread that runs
// main"), comma-separated.
void ShimDescribeBacklog(char *out, unsigned long size);
// Follower with threads: the process leads now (a takeover): a thread that
// still waits for a record in its lane runs its call for real instead.
void ShimLanesLead();
bool ShimLanesLeading();
void ShimLogStats(LogStats *sum);
void ShimCloseReaders();
// Leader: a control record in every lane but 0 (lane 0: ShimAppendControl).
bool ShimAppendControlAll(uint32_t kind, int64_t arg0);
// At the switch of a promotion, in both processes: the other log is used
// from now on (the new leader writes it, the old version reads it), in
// every lane (each thread of the process moves to its lane's other log at
// its switch record, or when it resumes after the switch).
void ShimSwapLogs();
// The calling thread uses its lane's log in the current direction.
void ShimUseOwnLane();
// Leader: every lane's log ends (the follower drains them, then sees the end).
void ShimCloseWriters();

// Control records: what the leader tells the follower between two calls.
constexpr uint32_t kCtlBase = 0xffff0000;
constexpr uint32_t kCtlTable = kCtlBase + 1;  // n_fds: the leader's whole table
constexpr uint32_t kCtlSwitch = kCtlBase + 2; // promotion: args[0] the
                                              // channel's number, n_fds 1
                                              // (lane 0; -1 in the others)
constexpr uint32_t kCtlSignal = kCtlBase + 3; // args[0] the signal, then its
                                              // siginfo_t (Signals.h)
// Leader: appends one (after sending its descriptors), with `len` bytes of
// `data` after the head; false when the log is no longer active.
bool ShimAppendControl(uint32_t kind, uint32_t n_fds, int64_t arg0,
                       const void *data = nullptr, uint64_t len = 0);
constexpr uint32_t kCtlEpollMap = kCtlBase + 4; // promoted leader's epoll
                                                // map (EpollMap.h)
// kCtlBase + 5 was the promotion of a process with threads that ended the
// old version; such a promotion is a kCtlSwitch in every lane now.
// A fork of the leader is followed (Children.h): args[0] the number of the
// child log's memfd in the leader, which the child keeps.
constexpr uint32_t kCtlChildLog = kCtlBase + 6;
// A thread started while a follower exists (Threads.cpp): its lane, then
// the memfd numbers of the lane's two logs in the leader, as data.
constexpr uint32_t kCtlNewLane = kCtlBase + 7;
// A managed thread about to be started in slot `slot` while a follower
// exists: the leader creates the lane's logs and announces them in the
// calling thread's log; the follower, at the same point of its program,
// takes the announcement and opens them. The thread gets the next lane,
// whatever its slot (a slot that a thread which ended left free included).
// False (the thread is refused) when every lane is taken, or the logs
// cannot be made or opened.
bool ShimLaneForNewThread(int slot, char *why, unsigned long size);
// A process forked by a leader or a follower (Children.h): `log` becomes its
// only lane, every other log of the update unmapped.
void ShimAdoptLog(Log *log);
// The follower's child that follows the leader's child `leader` (Children.h)
// on the log it adopted; `leader_pidfd` (or -1) tells it when that ends.
void ShimFollowChild(int leader, int leader_pidfd);
bool ShimFollowsChild(); // this process is such a follower
uint64_t ShimSeq();          // records appended (leader) or replayed (follower)
int ShimFollowerPid();       // leader: its follower until reaped, else 0
void ShimLead(int follower); // parent after the fork: record from now on
void ShimStopLeading();      // leader: stop recording (the follower is gone)
// Updated follower: replay from record 0. `leader_pidfd` (or -1): how a
// follower that is not the leader's child sees it end.
// kNoLeaderPidfd: cloned as the leader's sibling but no pidfd could be had.
constexpr int kNoLeaderPidfd = -2;
// `direction`: the rules that apply (MVR_FORWARD: the new version follows
// the old one; MVR_REVERSE: the old one follows the promoted new one).
void ShimFollow(int leader, int leader_pidfd = -1, int direction = 0);
void ShimForgetFollower();   // leader: the follower is reaped; free the logs
// Follower: a divergence makes it take over (the old version following the
// new one after promotion) instead of ending it.
void ShimTakeOverOnDivergence(bool on);
// The process leads or runs alone now: its threads get the kernel's default
// time slice back if they followed with a short one (Sched.h).
void ShimScheduleAsLeader();
// Leader with threads: every call of this update takes its place in the
// leader's order, not only those that change descriptors (an ordered retry
// when MVEDSUA_MVE_ORDER_LANES=0 turned the order off, Follower.cpp).
void ShimOrderAllCalls(bool on);
bool ShimOrdersAllCalls();

// What a follower that diverged leaves in the log's shared area for the
// leader or the supervisor to print. Fixed size, no pointers.
enum DivergenceKind : uint32_t {
  kDivNone = 0,
  kDivCall,       // a different syscall
  kDivArgument,   // a scalar argument (or a pointer's nullness) differs
  kDivBytes,      // the bytes sent differ
  kDivLength,     // as many bytes as both sent agree, one sent more
  kDivOutput,     // an output's recorded size does not fit (a bug)
  kDivExtra,      // the follower made a call after the leader's last
  kDivRule,       // a rule failed (its C code crashed, it cannot load)
  kDivSignal,     // the leader handled a signal the follower cannot
  kDivEpoll,      // an epoll event's data maps to nothing (EpollMap.h)
};

struct DivergenceReport {
  uint32_t kind;
  int32_t follower_pid;
  uint64_t record; // record number, from 0
  int32_t leader_nr, follower_nr;
  int32_t arg; // argument index for kDivArgument
  int32_t pad;
  int64_t leader_args[6], follower_args[6];
  int64_t leader_ret;
  uint64_t leader_len, follower_len; // bytes sent
  uint64_t offset;                   // first differing byte
  uint32_t n_leader_bytes, n_follower_bytes;
  uint8_t leader_bytes[16], follower_bytes[16];
  char text[1536]; // the report as printable lines
};

DivergenceReport *ShimDivergence(); // null without a log

// A record as the log holds it: this head, the bytes sent (in_len), then
// the out-items, each as u64 length + bytes.
struct RecHead {
  uint32_t nr;    // the call's number, or a control record's (kCtl*)
  uint32_t n_fds; // descriptors on the hand-over socket for this record
  uint64_t seq;
  int64_t args[6];
  int64_t ret;
  uint64_t in_len;
  // With several lanes, the call's place in the order across threads
  // (Log.h; 0: none):
  //  - n: a change of the descriptor table (a creation takes n once it
  //    returned, a close before it is made): replayed once every number
  //    before n is done, then n is done;
  //  - n | kOrderPublish: a call that hands something to whoever waits on
  //    a descriptor or a thread (Publishes), numbered before it was made:
  //    done once replayed, after no wait (what its thread wrote to memory
  //    before it is written by then);
  //  - v | kOrderAfter: a call that receives (Receives), when every
  //    thread's calls are ordered: v numbers were taken when it returned,
  //    and it is replayed once they are all done (what it could have seen
  //    is there).
  uint64_t order;
};
constexpr uint64_t kOrderPublish = 1ull << 62;
constexpr uint64_t kOrderAfter = 1ull << 63;

// For the follower's matcher (Rules.cpp): the next record's length (-1 at
// the log's end; the follower exits when the leader vanished or the log was
// abandoned), the replay of a record whose head was read, one record done
// (the call that took it, if any, and its result), and the end of a
// follower on a divergence (or a rule error: kDivRule with its text).
// `ahead`: the matcher looks past what its thread was given (a rule's
// further left calls); a thread the leader started there ends the look
// (-1), its announcement left in the log.
int64_t ShimWaitRecord(bool ahead);
long ShimReplayRecord(CallView &c, const RecHead &h);
void ShimRecordDone(const CallView *c, int64_t ret);
// With the calls ordered across lanes (RecHead.order): a record's replay
// waits for the calls it may depend on, and says its number done after.
void ShimOrderWait(const RecHead &h);
void ShimOrderDone(const RecHead &h);
// The calling thread's lane: its log, and the report its divergence
// writes (each lane's in its own log's user area).
Log *ShimThreadLog();
DivergenceReport *ShimLaneReport();
[[noreturn]] void ShimDiverge(DivergenceReport *r);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_SHIM_H
