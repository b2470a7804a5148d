// Sched.h: how the follower's threads are scheduled.
//
// With several threads, a follower replays their calls in the leader's order
// (docs/threads.md): one follower thread often waits for another to replay
// an earlier call, and each such hand-over that finds the other thread
// waiting for a core costs a scheduling delay. On a machine the leader and
// its clients keep busy those delays add up and the follower falls behind
// (mcd with 4 workers under memcslap on 2 cores: tens of MB of log). A
// short time slice (EEVDF's custom slice, sched_setattr's sched_runtime for
// SCHED_OTHER, Linux 6.12 and later, allowed to any process) lets a woken
// follower thread run sooner; it does not change its share of the CPU.
// Kernels without it refuse or ignore the request, and nothing changes.
#ifndef MVEDSUA_MVE_SCHED_H
#define MVEDSUA_MVE_SCHED_H

#include <stdint.h>

namespace mvedsua {
namespace mve {

// The slice of a follower's threads, in ns: MVEDSUA_MVE_FOLLOWER_SLICE_US
// (microseconds; 0 leaves the kernel's default), 100 us when unset.
uint64_t FollowerSliceNs();
// The calling thread's slice (0: the kernel's default).
void SchedSetOwnSlice(uint64_t ns);
// Every thread of the process (a process that starts or stops following
// with its threads running). No allocation, raw system calls only.
void SchedSetProcessSlices(uint64_t ns);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_SCHED_H
