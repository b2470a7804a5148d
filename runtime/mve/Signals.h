// Signals.h: asynchronous signals while a follower exists (docs/mve.md,
// "Signals").
//
// For every signal the program handles (a handler, not SIG_DFL/SIG_IGN, and
// none of the runtime's own: SIGSYS, the wake signal, glibc's two, the fatal
// ones), the runtime installs its own handler while this process leads or
// follows. In the leader it only notes the signal and its siginfo; at the
// next recorded call (Prepare) the leader appends a kCtlSignal record and runs
// the program's handler there, with the program's sa_mask and flags. A call
// the signal interrupted (the runtime's handler has no SA_RESTART) runs the
// pending handlers, then is made again when the program's handler had
// SA_RESTART and the call is restartable, else returns EINTR (recorded). The
// follower runs its own handler when it reads the record, at the same
// boundary; signals sent to it from outside run nothing (those the
// supervisor sent are passed to the leader). The program's sigaction calls
// meanwhile (trapped rt_sigaction) read and write the saved table.
// Nothing here allocates or locks in a handler.
#ifndef MVEDSUA_MVE_SIGNALS_H
#define MVEDSUA_MVE_SIGNALS_H

#include <signal.h>
#include <stdint.h>

namespace mvedsua {
namespace mve {

// Signals noted and not yet delivered (bit sig-1). Read on the recorded path
// only: one load.
extern uint64_t g_sig_pending;

// Swaps the runtime's handlers in (the first call saves the program's
// table), for a process that leads from now on / follows from now on
// (`leader`: whom it follows). Both are no-ops with
// MVEDSUA_MVE_SIGNALS=0 (signals stay asynchronous, as before).
void SigLead();
void SigFollow(int leader);
// No follower any more (or this process took over and runs alone): the
// program's handlers are restored and the signals noted and not delivered
// are queued again to this process, for its own handlers.
void SigStop();
// The calling thread ends: the signals sent to it alone end with it, as
// the kernel's do (else they would stay pending for the whole process).
void SigThreadEnds();

// Around the leader's fork (TrappedFork): Begin blocks the deferred
// signals and returns the mask to restore; End restores it, and first, in
// the child (not followed), puts the program's handlers back and forgets
// what the parent had noted (the kernel clears a child's pending signals;
// those sent to the child meanwhile wait in its queue).
uint64_t SigForkBegin();
void SigForkEnd(uint64_t mask, bool child, bool followed = false);
// A process forked by a leader or a follower that takes part in the update
// (Children.h): what its parent noted or read is not its own; `leader`: the
// process it follows (0 when it leads).
void SigForkedChild(int leader);

// Leader, at the entry of a recorded call (Prepare): delivers what is
// pending (a kCtlSignal record, then the program's handler).
void SigAtEntry();
// Leader, after a call returned `r` (libc's convention when `libc`, else
// -errno): when it was interrupted with a signal pending, delivers it and
// says whether to make the call again (the program's handler had
// SA_RESTART and the call restarts). errno is left as it was.
bool SigInterrupted(long nr, long r, bool libc);
inline bool SigRestart(long nr, long r, bool libc) {
  return __builtin_expect(
             __atomic_load_n(&g_sig_pending, __ATOMIC_RELAXED) != 0, 0) &&
         SigInterrupted(nr, r, libc);
}
// Leader: pause (mask null) or rt_sigsuspend (`mask`: the one it waits
// with), recorded calls while signals are deferred: a handler delivered at
// the call's entry (or, for rt_sigsuspend, one a signal blocked until now
// but let through by `mask` needs) makes it return EINTR at once, as it would
// have natively; else it waits, and what interrupts it is delivered under
// `mask`. Returns the kernel's result.
long SigWait(long nr, const long a[6], const uint64_t *mask);
// Deliveries made so far (for SigWait's caller).
extern uint64_t g_sig_deliveries;

// A local call (not recorded) interrupted by a deferred signal: true when
// it is to be made again (the program's handler has SA_RESTART and the call
// restarts); the handler itself runs at the next recorded call.
bool SigRestartLocal(long nr, long r);

// Follower: a kCtlSignal record was read (in NextRecord or the rules'
// ShimWaitRecord); its handler runs at SigRunRecorded, outside the log
// reader's own work. False when the follower cannot handle it (its program
// would take the default action that ends it): `why` says so.
void SigNoteRecorded(int sig, const siginfo_t *info);
bool SigRunRecorded(char *why, unsigned long size);
bool SigRecordedPending();

// A trapped rt_sigaction of a signal whose table the runtime keeps: answered
// from and written to the saved table. False: not such a signal (the caller
// makes the call); else the kernel's result in *ret.
bool SigAction(const long a[6], long *ret);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_SIGNALS_H
