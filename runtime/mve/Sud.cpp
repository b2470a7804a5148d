// Sud.cpp: arming Syscall User Dispatch and its SIGSYS handler (Sud.h).
//
// Traps handled here rather than in the shim:
//  - SUD is not inherited by fork or by new threads: each process (and, when
//    threads are followed, each thread) arms its own.
//  - A signal handler returns through rt_sigreturn issued by its restorer;
//    glibc's restorer lies in libc, outside the allowed range, and would trap
//    with the frame half unwound. Every handler is therefore made to return
//    through mvedsua_mve_restore_rt (in the trampoline section): those
//    installed before arming are rewritten at arming, later ones when their
//    rt_sigaction is trapped (RewriteRestorer).
#include "Sud.h"
#include "../Runtime.h"
#include "Raw.h"
#include "Shim.h"
#include "Signals.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif

namespace mvedsua {
namespace mve {

// Per thread: the kernel arms each thread on its own, with the address of
// its own selector.
__thread __attribute__((tls_model("initial-exec"))) char g_sud_selector = 0;
__thread __attribute__((tls_model("initial-exec"))) bool g_sud_armed = false;

namespace {

// rt_sigprocmask made in this handler would be undone by its own
// rt_sigreturn, which restores the mask saved in the frame: the change is
// made to that saved mask instead. SIGSYS stays unblocked (a blocked SIGSYS
// at the next trap would kill the process).
long TrappedSigprocmask(ucontext_t *uc, const long a[6]) {
  if (a[3] != 8)
    return -22; // EINVAL
  uint64_t *mask = reinterpret_cast<uint64_t *>(&uc->uc_sigmask);
  uint64_t old = *mask, set = 0;
  if (a[1]) {
    memcpy(&set, reinterpret_cast<const void *>(a[1]), 8);
    uint64_t keep = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)) |
                    (1ull << (SIGSYS - 1));
    if (a[0] == SIG_BLOCK)
      *mask = old | (set & ~keep);
    else if (a[0] == SIG_UNBLOCK)
      *mask = old & ~set;
    else if (a[0] == SIG_SETMASK)
      *mask = set & ~keep;
    else
      return -22;
  }
  if (a[2])
    memcpy(reinterpret_cast<void *>(a[2]), &old, 8);
  return 0;
}

void OnSigsys(int, siginfo_t *info, void *ctx) {
  ucontext_t *uc = static_cast<ucontext_t *>(ctx);
  greg_t *g = uc->uc_mcontext.gregs;
  long a[6] = {long(g[REG_RDI]), long(g[REG_RSI]), long(g[REG_RDX]),
               long(g[REG_R10]), long(g[REG_R8]), long(g[REG_R9])};
  if (info->si_syscall == SYS_rt_sigprocmask)
    g[REG_RAX] = TrappedSigprocmask(uc, a);
  else
    g[REG_RAX] = TrapDispatch(info->si_syscall, a);
}

bool InstallHandler() {
  KSigaction sa = {};
  sa.handler = reinterpret_cast<void *>(OnSigsys);
  // SA_NODEFER: a handler of the program that runs inside a trapped call
  // (or a nested trap) must be able to trap again.
  sa.flags = SA_SIGINFO | SA_NODEFER | kSaRestorer;
  sa.restorer = reinterpret_cast<void *>(mvedsua_mve_restore_rt);
  return RawSyscall(SYS_rt_sigaction, SIGSYS, long(&sa), 0, 8) == 0;
}

// Handlers installed before arming return through the layer's restorer.
void RewriteInstalledHandlers() {
  for (int sig = 1; sig <= 64; ++sig) {
    KSigaction old;
    if (sig == SIGSYS || sig == SIGKILL || sig == SIGSTOP ||
        RawSyscall(SYS_rt_sigaction, sig, 0, long(&old), 8) != 0)
      continue;
    if (old.handler == SIG_DFL || old.handler == SIG_IGN)
      continue;
    old.flags |= kSaRestorer;
    old.restorer = reinterpret_cast<void *>(mvedsua_mve_restore_rt);
    RawSyscall(SYS_rt_sigaction, sig, long(&old), 0, 8);
  }
}

} // namespace

// A trapped rt_sigaction: the new handler returns through our restorer, and
// SIGSYS stays the layer's.
long TrappedSigaction(const long a[6]) {
  if (a[0] == SIGSYS && a[1])
    return -22; // EINVAL: the catch-all owns SIGSYS while a follower exists
  long ret;
  if (SigAction(a, &ret)) // a signal the runtime defers: its saved table
    return ret;
  KSigaction copy;
  long act = a[1];
  if (act) {
    memcpy(&copy, reinterpret_cast<const void *>(act), sizeof copy);
    if (copy.handler != SIG_DFL && copy.handler != SIG_IGN) {
      copy.flags |= kSaRestorer;
      copy.restorer = reinterpret_cast<void *>(mvedsua_mve_restore_rt);
    }
    act = long(&copy);
  }
  return RawSyscall(SYS_rt_sigaction, a[0], act, a[2], a[3]);
}

bool SudArm() {
  const char *env = getenv("MVEDSUA_MVE_SUD");
  if (env && !strcmp(env, "0"))
    return false;
  if (!InstallHandler())
    return false;
  RewriteInstalledHandlers();
  SudBlock();
  long begin = long(mvedsua_mve_tramp_begin);
  long len = long(mvedsua_mve_tramp_end - mvedsua_mve_tramp_begin);
  if (RawSyscall(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
                 begin, len, long(&g_sud_selector)) != 0) {
    mvedsua::Report("warning: Syscall User Dispatch unavailable: glibc's "
                    "internal calls will not be compared");
    return false;
  }
  g_sud_armed = true;
  return true;
}

void SudDisarm() {
  if (!g_sud_armed)
    return;
  RawSyscall(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0,
             0, 0);
  g_sud_armed = false;
}

} // namespace mve
} // namespace mvedsua
