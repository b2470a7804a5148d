// UpdateGuard.h: what a follower may not do while it updates.
//
// The follower is a fork of the leader: its descriptors share the leader's
// open file descriptions, and so the kernel objects behind them. While the
// follower updates (from the fork until it starts replaying), the new
// version's code and the state transformer run for real; a change they make
// to a shared object is a change to the leader's. The one such change that
// real programs make is to an epoll instance: an event library that rebuilds
// its loop in the new version (libevent's event_base_free) removes every
// registration from the epoll instance the leader still waits on, and the
// leader stops seeing its clients. So an epoll_ctl of the updating follower
// on an epoll instance it inherited fails the update, naming the call and
// the thread, before it reaches the kernel; the leader goes on unaffected.
// (epoll instances the new version creates are its own.)
#ifndef MVEDSUA_MVE_UPDATEGUARD_H
#define MVEDSUA_MVE_UPDATEGUARD_H

namespace mvedsua {
namespace mve {

// Nonzero while the follower updates and inherited epoll instances exist.
extern int g_update_guard;

// Follower, at the fork: notes every epoll instance it inherited (a copy of
// each descriptor above the program's numbers, to recognise the instance
// under any number later) and arms the guard.
void GuardInheritedEpolls();
// Follower, as it starts replaying: the guard is disarmed, the copies closed.
void GuardEnd();
// The interposed epoll_ctl, while armed: ends the follower with a failed
// update when `epfd` is one of the inherited instances; returns otherwise.
void GuardEpollCtl(int epfd, int op, int fd);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_UPDATEGUARD_H
