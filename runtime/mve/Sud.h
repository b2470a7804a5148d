// Sud.h: the catch-all, Syscall User Dispatch.
//
// While a follower exists, both processes arm SUD: every syscall made
// outside the layer's trampoline (Raw.cpp) while the selector byte says
// BLOCK raises SIGSYS, whose handler records (leader) or replays (follower)
// it with the same schema as the interposed symbols. That is how glibc's
// internal calls (stdio's __write, __open) and raw syscall() are seen. The
// interposed wrappers keep their fast path: the leader opens the selector
// around the real call, so a hot call costs no signal.
#ifndef MVEDSUA_MVE_SUD_H
#define MVEDSUA_MVE_SUD_H

namespace mvedsua {
namespace mve {

// The selector and whether SUD is armed, per thread (each thread arms its
// own, SudArm; a thread that joins a lane arms it then).
extern __thread __attribute__((tls_model("initial-exec"))) char g_sud_selector;
extern __thread __attribute__((tls_model("initial-exec"))) bool g_sud_armed;

// Arms SUD in the calling thread: installs the SIGSYS handler and points
// every installed handler's return at the layer's restorer (glibc's would
// trap). Off with MVEDSUA_MVE_SUD=0. False when the kernel refuses it.
bool SudArm();
void SudDisarm();

inline void SudAllow() {
  __atomic_store_n(&g_sud_selector, 0, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
inline void SudBlock() {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&g_sud_selector, 1, __ATOMIC_RELAXED);
}

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_SUD_H
