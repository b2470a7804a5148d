// Threads.h: the threads that take part in updates (mvedsua_thread_create,
// kitsune_pthread_create), their quiescence at update points and their
// relaunch in the new version. See docs/threads.md.
//
// The thread that runs main drives an update (its frame holds the driver that
// control migrates to). The others are "managed" threads, each in a slot
// numbered in creation order (1, 2, ...; main is 0). At an update:
//
//   driver, at its update point   QuiesceThreads: opens quiescence, wakes the
//                                 managed threads that wait (their condition
//                                 variable, or a signal for a wait point) and
//                                 waits, bounded, until each one stopped at
//                                 one of its update points (ThreadAtPoint)
//   driver                        loads, transfers (each parked thread saved
//                                 its migrated locals), RemapThreadStarts
//   driver, new version's main    at the point it came from: LaunchThreads,
//                                 each parked thread unwinds to its start and
//                                 runs the new version's function; then
//                                 AwaitLaunchedThreads until every one reached
//                                 the point it stopped at (bounded)
//   everyone                      the update completes, all go on
//
// A failure before the transfer (a thread that never arrived, a refused
// update) releases the parked threads in the old version: ReleaseThreads.
#ifndef MVEDSUA_RUNTIME_THREADS_H
#define MVEDSUA_RUNTIME_THREADS_H

#include <pthread.h>
#include <stdint.h>
#include <string>

// The entry points of include/mvedsua.h's thread API (Threads.cpp).
extern "C" int __mvedsua_rt_thread_create(pthread_t *thread,
                                          const pthread_attr_t *attr,
                                          void *(*start)(void *), void *arg);
extern "C" void __mvedsua_rt_thread_on_update(void (*kick)(void *), void *arg);
extern "C" int __mvedsua_rt_cond_wait(const char *point, pthread_cond_t *cond,
                                      pthread_mutex_t *mutex,
                                      const struct timespec *abstime);

namespace mvedsua {

// The calling thread's slot: 0 for the driver (main), k >= 1 for a managed
// thread, -1 for any other thread.
int ThreadSlot();
void SetDriverThread(); // the driver's thread, once, in RunVersions

// Managed threads alive (parked or not).
int ManagedThreadCount();

// A managed thread's update point (the driver's goes to InPlaceUpdate.cpp).
void ThreadAtPoint(const char *name);

// Driver. 0 when every managed thread is parked at an update point (or there
// is none); -1 with *reason naming the threads that did not arrive within
// the bound ($MVEDSUA_QUIESCE_TIMEOUT_MS, default 2000 ms): those that did
// were released.
int QuiesceThreads(std::string *reason);
// Driver: the update does not happen; parked threads go on where they were.
void ReleaseThreads();
// Driver, after the plan (StateTransfer's remap service is live): each parked
// thread's start function and argument in the new version. -1 with *reason
// when the new version lacks a thread's function.
int RemapThreadStarts(std::string *reason);
// Driver, at its point in the new version: the parked threads start the new
// version's functions, then the driver waits (bounded by `timeout_ms`, 0 for
// none) until each reached the point it stopped at. 0 when all did; -1 with
// *reason naming the others, which keep running (unreleased: no longer
// updating).
int LaunchThreads(uint64_t timeout_ms, std::string *reason);
// Everyone waiting at its point after a launch goes on.
void EndThreadUpdate();

// ---- editing the threads an update relaunches (Kitsune's kitsune_threads_*)
// Driver, after RemapThreadStarts and before LaunchThreads.
// The next parked thread after slot `after` (0: the first) that is to be
// relaunched; -1 when there is none.
int NextParkedThread(int after);
// What it will run in the new version, and the point it stopped at.
void ParkedThreadStart(int k, void *(**fn)(void *), void **arg,
                       const char **point);
void SetParkedThreadStart(int k, void *(*fn)(void *), void *arg);
// It is not relaunched: it ends.
void RemoveParkedThread(int k);
// A new thread, started with the others, that runs `fn(arg)` in the new
// version as if it had stopped at `point` (its update completes there); -1
// when every slot is taken.
int AddParkedThread(void *(*fn)(void *), void *arg, const char *point,
                    const pthread_attr_t *attr);

// ---- multi-version updates (runtime/mve) ----
// The highest slot in use (0 when there is no managed thread).
int MaxManagedSlot();
// The start function's name of slot k, for messages ("?" when unknown).
const char *ThreadName(int k);
// Called by every managed thread that goes on after an update stopped it
// (released, or at its point after a relaunch), with its slot.
void SetThreadResumeHook(void (*hook)(int slot));
// In a follower forked with the threads parked: no kernel thread runs them,
// so LaunchThreads creates one per parked slot, and the relaunched threads
// wait at their points until ReleaseHeldThreads (the follower starts
// replaying their lanes then).
void ThreadsForkedChild();
void ReleaseHeldThreads();

// The point the calling thread stopped at for the update under way, for
// mvedsua_is_updating_from(); null when it has none.
const char *ThreadUpdatingFrom();
// True while the calling managed thread runs the new version and has not yet
// reached its point.
bool ThreadIsUpdating();

// Wait points (mvedsua_wait_points, --wait-points): the kinds enabled, as
// include/mvedsua.h's MVEDSUA_WAIT_* numbers them.
enum WaitKind : int {
  kWaitEpoll = 1,  // epoll_wait, epoll_pwait
  kWaitPoll = 2,   // poll, ppoll
  kWaitSelect = 4, // select
  kWaitAccept = 8, // accept, accept4 on a blocking socket
  kWaitAll = 15,
};
extern int g_wait_points;
// Around a blocking wait of a managed thread or the driver: the update
// point before it, and whether an update interrupted it (then the wait is
// made again after the point).
void WaitPointEnter(const char *point);
bool WaitPointInterrupted(int saved_errno);
// A wait point's call that an update's wake-up interrupted (kernel result
// `ret`): the program never sees it, so a leader does not record it either
// (its follower, which got no wake-up, would not make it again).
bool WaitPointKicked(long ret);
// The wake signal's handler: which thread it interrupted (async-signal-safe).
void NoteWakeSignal();

} // namespace mvedsua

#endif // MVEDSUA_RUNTIME_THREADS_H
