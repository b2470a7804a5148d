// Raw.h: the multi-version layer's own system calls.
//
// Every syscall the layer makes for itself (futex waits, growing the log,
// killing a follower) goes through RawSyscall, a few instructions of assembly
// in their own section (Raw.cpp). It never touches errno, never goes through
// the interposed libc symbols (which would record or replay the runtime's own
// calls), and its address range is the one Syscall User Dispatch lets through
// without a trap.
#ifndef MVEDSUA_MVE_RAW_H
#define MVEDSUA_MVE_RAW_H

#include <stdint.h>

extern "C" {
// Returns the kernel's raw result: >= 0, or -errno.
long mvedsua_mve_raw_syscall(long nr, long a0, long a1, long a2, long a3,
                             long a4, long a5)
    __attribute__((visibility("hidden")));
// Bounds of the section that holds the syscall instructions above and the
// signal restorer (SUD's allowed range).
extern const char mvedsua_mve_tramp_begin[] __attribute__((visibility("hidden")));
extern const char mvedsua_mve_tramp_end[] __attribute__((visibility("hidden")));
void mvedsua_mve_restore_rt() __attribute__((visibility("hidden")));
}

namespace mvedsua {
namespace mve {

inline long RawSyscall(long nr, long a0 = 0, long a1 = 0, long a2 = 0,
                       long a3 = 0, long a4 = 0, long a5 = 0) {
  return mvedsua_mve_raw_syscall(nr, a0, a1, a2, a3, a4, a5);
}

// The kernel's struct sigaction on x86-64 (not glibc's), for raw
// rt_sigaction; SA_RESTORER, which glibc does not export.
struct KSigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};
constexpr unsigned long kSaRestorer = 0x04000000;

// Writes a whole buffer to fd with raw syscalls (diagnostics, summaries).
void RawWriteAll(int fd, const char *buf, uint64_t len);

// Moves one of the runtime's descriptors clear of the program's low numbers,
// which programs hard-code (dup2(x, 3)) or close in bulk at startup; returns
// the new number (close-on-exec), or fd itself if it cannot be moved.
int MoveFdHigh(int fd);
// An on/off setting from the environment, on unless NAME is "0"; read once
// into *cache (-1 before).
bool EnvOn(const char *name, int *cache);
// An opt-in setting: on only when NAME is "1"; read once into *cache.
bool EnvOptIn(const char *name, int *cache);
// The runtime's own descriptors, which are never the program's (MoveFdHigh
// notes its results); CloseRuntimeFd closes one and forgets it.
void NoteRuntimeFd(int fd);
void CloseRuntimeFd(int fd);
bool IsRuntimeFd(int fd);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_RAW_H
