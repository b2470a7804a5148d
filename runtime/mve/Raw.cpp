// Raw.cpp: the layer's syscall trampoline (see Raw.h). x86-64 only: the
// catch-all (Syscall User Dispatch) and the register layout of the trapped
// syscalls are x86-64's too.
#include "Raw.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#if !defined(__x86_64__)
#error "the multi-version layer supports x86-64 only"
#endif

// System V argument registers to the kernel's: nr in rax; a0..a5 in rdi, rsi,
// rdx, r10, r8, r9. The 7th C argument (a5) is on the stack.
// mvedsua_mve_restore_rt is the sa_restorer of the SIGSYS handler: glibc's own
// restorer lies in libc and would itself trap when rt_sigreturn is blocked.
// Unwinders (backtrace() in a handler) look up the return address minus one:
// the nop before the restorer keeps that outside raw_syscall's CFI, so they
// recognise the signal frame by its bytes (mov $15, %rax; syscall), as they
// do glibc's __restore_rt.
asm(R"(
  .pushsection .text.mvedsua_mve_tramp,"ax",@progbits
  .globl mvedsua_mve_tramp_begin
  .hidden mvedsua_mve_tramp_begin
  .globl mvedsua_mve_raw_syscall
  .hidden mvedsua_mve_raw_syscall
  .type mvedsua_mve_raw_syscall,@function
  .globl mvedsua_mve_restore_rt
  .hidden mvedsua_mve_restore_rt
  .type mvedsua_mve_restore_rt,@function
  .globl mvedsua_mve_tramp_end
  .hidden mvedsua_mve_tramp_end
  .p2align 4
mvedsua_mve_tramp_begin:
mvedsua_mve_raw_syscall:
  .cfi_startproc
  movq %rdi, %rax
  movq %rsi, %rdi
  movq %rdx, %rsi
  movq %rcx, %rdx
  movq %r8, %r10
  movq %r9, %r8
  movq 8(%rsp), %r9
  syscall
  ret
  .cfi_endproc
  .size mvedsua_mve_raw_syscall, .-mvedsua_mve_raw_syscall
  nop
mvedsua_mve_restore_rt:
  movq $15, %rax
  syscall
  hlt
  .size mvedsua_mve_restore_rt, .-mvedsua_mve_restore_rt
mvedsua_mve_tramp_end:
  .popsection
)");

namespace mvedsua {
namespace mve {

void RawWriteAll(int fd, const char *buf, uint64_t len) {
  while (len > 0) {
    long n = RawSyscall(SYS_write, fd, long(buf), long(len));
    if (n == -4) // EINTR
      continue;
    if (n <= 0)
      return;
    buf += n;
    len -= uint64_t(n);
  }
}

namespace {
// The runtime's own descriptors (logs, pidfds, the hand-over pair): never
// handed over, never counted as the program's. A few at a time.
constexpr int kMaxRuntimeFds = 512; // two logs and a socket per lane, ...
int g_runtime_fds[kMaxRuntimeFds];
int g_runtime_fd_count;
} // namespace

void NoteRuntimeFd(int fd) {
  if (fd < 0 || IsRuntimeFd(fd))
    return;
  for (int i = 0; i < g_runtime_fd_count; ++i)
    if (g_runtime_fds[i] < 0) {
      g_runtime_fds[i] = fd;
      return;
    }
  if (g_runtime_fd_count < kMaxRuntimeFds)
    g_runtime_fds[g_runtime_fd_count++] = fd;
}

void CloseRuntimeFd(int fd) {
  if (fd < 0)
    return;
  for (int i = 0; i < g_runtime_fd_count; ++i)
    if (g_runtime_fds[i] == fd)
      g_runtime_fds[i] = -1;
  RawSyscall(SYS_close, fd);
}

bool IsRuntimeFd(int fd) {
  for (int i = 0; i < g_runtime_fd_count; ++i)
    if (g_runtime_fds[i] == fd)
      return true;
  return false;
}

bool EnvOn(const char *name, int *cache) {
  if (*cache < 0) {
    const char *s = getenv(name);
    *cache = !(s && !strcmp(s, "0"));
  }
  return *cache;
}

bool EnvOptIn(const char *name, int *cache) {
  if (*cache < 0) {
    const char *s = getenv(name);
    *cache = s && !strcmp(s, "1");
  }
  return *cache;
}

int MoveFdHigh(int fd) {
  struct rlimit lim;
  long floor = 3;
  if (RawSyscall(SYS_getrlimit, RLIMIT_NOFILE, long(&lim)) == 0 &&
      lim.rlim_cur >= 1024)
    floor = 960;
  long high = RawSyscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor);
  if (high < 0) {
    NoteRuntimeFd(fd);
    return fd;
  }
  RawSyscall(SYS_close, fd);
  NoteRuntimeFd(int(high));
  return int(high);
}

} // namespace mve
} // namespace mvedsua
