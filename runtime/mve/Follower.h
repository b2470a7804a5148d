// Follower.h: multi-version updates (docs/mve.md, "The multi-version update").
//
// A multi-version request is taken at an update point like an in-place one,
// but the process forks there: the child (the follower) performs the update
// with the in-place engine while the parent (the leader) keeps serving the
// old version and records; once the new version reaches its update point
// the follower replays the leader's log from the fork on, then follows live.
// Every failure ends the follower and leaves the leader alone.
#ifndef MVEDSUA_MVE_FOLLOWER_H
#define MVEDSUA_MVE_FOLLOWER_H

#include <stddef.h>
#include <stdint.h>

namespace mvedsua {
namespace mve {

// The stages of one update, as the leader and the status report them.
enum Stage : uint32_t {
  kSingleLeader = 0, // no follower
  kUpdating = 1,     // the follower applies the update
  kCatchingUp = 2,   // the new version replays the backlog
  kOutdatedLeader = 3, // caught up: the new version is checked live
  kUpdatedLeader = 4,  // promoted: the new version leads, the old follows
};
const char *StageName(uint32_t stage);

// Called by the in-place engine when it takes a multi-version request at
// update point `point`. Forks: returns kInFollower in the child, which then
// performs the update; kInLeader in the parent, which returns from the
// update point at once; kForkFailed (reported) when no follower could start.
enum ForkResult { kForkFailed = -1, kInLeader = 0, kInFollower = 1 };
int ForkUpdateFollower(const char *path, const char *point);

// Around the runtime's own work at an update point: neither recorded nor
// replayed (the supervisor's channel, the runtime's reports), and afterwards
// the stages advance (the leader starts recording or concludes, the updated
// follower starts replaying).
int PauseShim();
void ResumeShim(int mode);

// From the shim's append path (every few records, async-signal-safe): the
// follower's stage and progress, its time limits, and whether it is gone.
void LeaderTick();
// The shim stopped recording because the log is no longer active.
void LeaderLostFollower();
// Follower: after each replayed record while catching up; true once the
// backlog is down to the caught-up level (the stage then advances).
bool FollowerCheckCaughtUp();
// Follower: a reason to lead now (async-signal-safe; from the replay).
// True when this process took over: the call being replayed runs for real.
enum TakeOverKind {
  kTakeOverLeaderGone, // the leader vanished: taken over if it crashed
  kTakeOverYielded,    // the log ended: taken over if the leader yielded
  kTakeOverDiverged,   // the old version found the new leader wrong
};
bool FollowerTakeOver(int kind);
// Follower: the switch record of a promotion; it leads from now on, and
// the old version follows it. `channel`: the supervisor channel's number
// (handed over with the record), or -1.
bool FollowerSwitchToLeader(int channel);
// With threads, FollowerSwitchToLeader is lane 0's; another thread at its
// lane's switch record makes the process lead if it gets there first (main's
// thread may wait for a lock it holds), or waits until it leads, and then
// leads its lane. True.
bool FollowerLaneSwitchToLeader();
// A thread that finds the process leading in the other direction than its
// lane's: returns once the thread making the process lead has finished
// (its mode set first, its epoll map and channel after), at once when no
// switch is under way.
void FollowerAwaitSwitch();
// Follower, while it updates: the update failed (`why`, reported as the
// outcome); it ends.
[[noreturn]] void FollowerFailUpdate(const char *why);
// Follower: it cannot go on (a hand-over that failed); reported, then ends.
[[noreturn]] void FollowerAbort(const char *why);
// Leader: sending descriptors failed (errno `err`): the follower could not
// take over any more, so it is ended.
void LeaderHandoverFailed(int err);
// At the leader's exit: how a multi-version update's follower ended, as one
// report; 0 when the follower was not one (the shim's own wording then).
int DescribeUpdateFollowerEnd(char *line, size_t size, int status, int pid);
void LeaderExited(int status);
// The leader's wait4 on its follower. A follower cloned as the supervisor's
// child (CLONE_PARENT) is not the leader's to wait for: its end is seen on
// a pidfd and its status made up from what it wrote in the shared area
// (-1 when it wrote nothing: a signal killed it, the supervisor reaped it).
// Returns like wait4 (pid, 0 with WNOHANG while it runs, -errno).
long WaitFollower(int pid, int *status, int options);
// Follower: about to exit_group(code) on its own (divergence, the program's
// end, a failed update): said in the shared area for a leader that cannot
// wait4 it.
void FollowerNoteExit(int code);
// A follower on `log` that crashed: what it left in the log's shared area
// (signal, address, backtrace), as text into `out`.
struct Log;
bool FollowerCrashed(Log *log, char *out, size_t size);
// Follower, at a divergence: the calling thread's stack (symbolised) into
// the shared area, shown with the report; the text, or "" when another
// thread's divergence took it first.
const char *FollowerNoteStack();
// A divergence report as the operator reads it: `head`, the report's text,
// then the follower's stack when there is one ("the follower's stack:" on
// a line of its own). Returns like snprintf.
int FormatReportWithStack(char *out, size_t size, const char *head,
                          const char *text, const char *stack);

// Leader with threads, after each record: a thread whose process is to stop
// (its crash, or a follower that found it wrong) waits here, its last call
// in the log, so that no call of it goes unrecorded (Follower.cpp, Hold).
void LeaderHoldIfAsked();

// True in a process that must not take update requests of its own: a
// leader with a follower, or a follower.
bool MultiVersionBusy();

// In a child the leader forked (Shim.cpp's TrappedFork, in the SIGSYS
// handler, with glibc's fork locks held: raw syscalls only): closes the
// update's descriptors the child inherited (the hand-over socket, the
// pidfds, a hidden supervisor channel) and forgets the update, so that a
// long-lived child holds nothing of it. The logs are the shim's to free.
void ForgetUpdateInChild();

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_FOLLOWER_H
