// Children.h: a process the leader forks gets a follower of its own.
//
// Before its fork the leader creates a log for the child and names the
// log's memfd in a control record (kCtlChildLog). The child leads on that
// log, and the follower, where it replays the fork, forks too: its child
// opens the log through /proc/CHILD/fd/N and follows the leader's child,
// comparing every call as the update's follower does. A follower's child
// that diverges leaves its report in the child log's shared area, where the
// leader of the update finds it and rolls the update back (Follower.cpp's
// Check): the whole tree is one update. A child that executes a program
// leaves multi-version execution: its follower ends quietly.
//
// Any thread of a leader forks followed children: the announcement and the
// fork are records of that thread's lane, and the follower's thread that
// replays them forks the child's follower. Only while the update's follower
// is the one that may be rolled back (the leader's children while it leads). Everything here runs in the SIGSYS handler of
// a fork, with glibc's fork locks held: raw system calls only.
#ifndef MVEDSUA_MVE_CHILDREN_H
#define MVEDSUA_MVE_CHILDREN_H

#include <stddef.h>
#include <stdint.h>

namespace mvedsua {
namespace mve {

struct Log;

// Leader, before its fork: the child's log, announced to the follower, or
// null when the child will not be followed.
Log *ChildLogBeforeFork();
// Leader, after the fork: the child's pid (or the failed fork's -errno) in
// the parent; in the child, which then leads on `log`.
void ChildForkedInParent(Log *log, long pid);
void ChildForkedInChild(Log *log);

// Follower: the control record announcing the next fork's log.
void ChildNoteLog(int memfd_number);
// Follower of `leader`, having replayed a fork that gave the leader `pid`:
// forks again with the same clone arguments when the leader's child is
// followed. The log is opened through the leader's descriptor (it keeps it
// until the child's follower is done; the child may have ended already).
// True in the follower's child, which now follows the leader's child.
bool ChildFollowerFork(const long clone_args[6], long pid, long leader);
// Follower: reaps the followers of children that ended (never blocks).
void ChildReap();

// Leader of an update: the first report of a child's follower that
// diverged, as text into `out`. False when none did.
bool ChildDiverged(char *out, size_t size);
// A followed child that leads children of its own: the report of one of
// their followers that diverged or crashed goes up, into this child's log,
// where its parent's leader finds it (the update's leader rolls back). At
// the child's exit (`exiting`) it first waits, bounded, for those followers
// to finish.
void ChildPassUp(bool exiting);
// Leader: every child's follower stops (the leader goes on alone, or the
// update is over); the children lead on alone.
void ChildPairsEnd();
// How many children are followed now (status).
int ChildPairsFollowed();

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_CHILDREN_H
