// EpollMap.h: epoll_event.data across two versions.
//
// A new version may key its epoll events differently (a pointer to its own
// connection struct where the old one stored the descriptor). The leader
// records the data of each epoll_ctl in the record's unused sixth compared
// value (RecHead.args[4]: the record keeps its size); the follower compares
// epoll_ctl on everything but data and keeps a map
//   (epfd, leader's data) -> (its own data, fd, events)
// with which it rewrites the events its epoll_wait replays (registrations
// inherited at the fork hold the same value in both processes: a value of
// an epoll instance older than the fork with no entry is passed through;
// in an instance created since, it is a divergence). When a follower
// comes to lead (promotion, a takeover), the kernel's registrations still
// carry the other process's data: it re-registers every mapped (epfd, fd)
// with EPOLL_CTL_MOD and its own data before its first real call, and a
// promoted leader sends its map to the old version (control record
// kCtlEpollMap), which follows it with the map the other way round.
// See docs/mve.md, "epoll_event.data".
#ifndef MVEDSUA_MVE_EPOLLMAP_H
#define MVEDSUA_MVE_EPOLLMAP_H

#include "Schema.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

namespace mvedsua {
namespace mve {

struct RecHead;

// Leader: the data of an epoll_ctl's event (0 when there is none), for the
// record's args[4], which the schema leaves unused (X) for epoll_ctl.
inline int64_t EpollCallData(const CallView &c) {
  const epoll_event *ev = reinterpret_cast<const epoll_event *>(c.a[3]);
  return ev && c.a[1] != EPOLL_CTL_DEL ? int64_t(ev->data.u64) : 0;
}
constexpr int kEpollDataArg = 4;

// Follower, before comparing a record: an epoll_ctl's recorded data is taken
// out of the compared values (args[4] back to 0) and kept for EpollReplayed.
void EpollTakeLeaderData(RecHead &h);
// Follower, after a record was replayed (the call's out-items copied back):
// epoll_ctl fills or drops map entries, epoll_wait/epoll_pwait get their
// events' data rewritten (a leader value with no entry is a divergence),
// close/dup2/dup3 drop the entries of the descriptor closed.
void EpollReplayed(const CallView &c, int64_t ret);

// This process now leads (after the switch of a promotion, or a takeover):
// every mapped registration whose data differs is re-registered with
// EPOLL_CTL_MOD, this version's data and its recorded events. Then, when
// `send` (a promoted leader), the map goes to the old version as a control
// record in the log now written. Returns how many were re-registered.
int EpollBecomeLeader(bool send);
// Follower: the promoted leader's map (a kCtlEpollMap record whose head was
// read: h.in_len bytes of entries follow), installed the other way round.
void EpollReceiveMap(const RecHead &h);
// The update is over, or this process leads alone: no map.
void EpollForget();
// Entries held (tests, reports).
uint64_t EpollMapSize();

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_EPOLLMAP_H
