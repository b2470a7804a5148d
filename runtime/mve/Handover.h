// Handover.h: the leader's file descriptors, passed to the follower with the
// same numbers (SCM_RIGHTS), so that the follower can take over.
//
// Replaying needs no descriptor: the follower takes results from the log.
// Taking over (promotion, or the leader's crash) needs all of them. So:
//  - while the follower updates and catches up, nothing is sent: a
//    descriptor in flight, or held by a follower far behind, would keep a
//    connection the leader hung up on open until the follower replays the
//    close;
//  - once the follower has caught up, the leader sends its whole table in one
//    batch (a control record marks the point in the log where it applies);
//  - from then on every record of a call that creates descriptors (accept,
//    open, socket, pipe, dup, epoll_create, eventfd, timerfd, fcntl F_DUPFD,
//    fds received with SCM_RIGHTS) carries them (RecHead.n_fds), and the
//    follower installs them at the leader's numbers as it replays it.
// The follower's copies (its "mirrors") are closed for real when it replays
// the leader's close, so a hang-up reaches the peer once the follower is
// past it. A number where the follower holds a descriptor of its own (one
// the new version opened while updating) cannot take the leader's: a
// collision, which ends the follower.
//
// Everything here runs with raw syscalls and fixed buffers: the follower's
// side may run in the SIGSYS handler.
#ifndef MVEDSUA_MVE_HANDOVER_H
#define MVEDSUA_MVE_HANDOVER_H

#include "Schema.h"
#include "Shim.h"

#include <stddef.h>
#include <stdint.h>

namespace mvedsua {
namespace mve {

// With threads, each lane (thread pair, Shim.h) has its own socket pair: a
// record's descriptors go on its lane's pair, so a follower thread receives
// exactly its own records' whatever the pace of the others. The table and
// the supervisor channel go on lane 0's.
//
// Before the fork: one socket pair per lane (both ends above the program's
// numbers).
bool HandoverCreate(int lanes, char *err, size_t size);
// After the fork: each process keeps its ends (`leader` true in the parent).
void HandoverKeepEnd(bool leader);
// Every end closed (the update is over).
void HandoverDestroy();
// The calling thread sends and receives on lane k's pair from now on.
void HandoverUseLane(int k);
// A thread started while a follower exists gets lane k (the next one). The
// leader makes the pair and sends the follower's end on the calling
// thread's lane (1, or -errno); the follower receives it there at the same
// record (null, or why not).
int HandoverNewLane(int k);
const char *HandoverJoinLane(int k);
// Lanes with a socket pair (0: this update hands nothing over).
int HandoverLanes();
// At promotion the roles swap on the same pairs (they are bidirectional):
// the new leader sends on the ends it received on.

// ---- the leader -------------------------------------------------------------
// True once the batch was sent: records then carry their descriptors.
bool HandoverLive();
// A promoted leader: its follower holds every descriptor already.
void HandoverSetLive();
// Sends every descriptor of the program (below the runtime's range) in one
// batch; returns how many (>= 0) or -errno. The caller appends the control
// record that says so, right after.
int HandoverSendTable();
// After a recorded call returned `ret`: sends the descriptors it created,
// on the calling thread's lane.
// Returns how many (0 when none or not live yet), -errno when sending failed
// (the follower cannot take over any more: it is abandoned).
int HandoverSendNew(const CallView &c, long ret);
// Whether a call that returned `ret` created descriptors (they are handed
// over with its record).
bool HandoverCreates(const CallView &c, long ret);
// Sends one runtime descriptor (the supervisor channel at promotion) with
// the number the receiver must give it. Returns 1 or -errno.
int HandoverSendOne(int fd, int as_number);

// ---- the follower -------------------------------------------------------------
// The descriptors it holds as the leader's copies: those it inherited at the
// fork (noted before the update opened anything), then those it received.
void HandoverNoteInherited();
// Receives `n` descriptors and installs each at the leader's number. Returns
// 0, or a message (static) saying why the follower cannot hold them.
// `force`: a runtime descriptor (the supervisor channel at promotion), put
// at its number whatever is there, and not a copy of the leader's.
const char *HandoverReceive(uint64_t n, bool force = false);
// The leader's whole table: afterwards the follower holds all of it.
const char *HandoverReceiveTable(uint64_t n);
// The leader closed `fd` (or dup2'ed over it): the follower closes its copy.
void HandoverRelease(int fd);
// After the switch at promotion: the old version, now the follower, holds
// every descriptor of the program as the new leader's copies.
void HandoverMirrorAll();
// Drops the follower's bookkeeping (it leads or is alone now).
void HandoverForgetMirrors();
// The follower has every descriptor of its leader (the table came, or it
// led itself until the switch): it can take over.
bool HandoverHoldsAll();

// Calls f for each open descriptor of the program (not the runtime's, not
// the supervisor channel), read with raw syscalls.
void HandoverForEachProgramFd(void (*f)(int fd));

// True for a descriptor number the runtime uses itself (never handed over).
bool HandoverIsRuntimeFd(int fd);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_HANDOVER_H
