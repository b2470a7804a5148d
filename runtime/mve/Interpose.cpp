// Interpose.cpp: the libc functions libmvedsua defines in place of glibc's.
//
// mvedsua-run links libmvedsua, so it comes before libc in the global lookup
// scope and these definitions are the ones every version (and every library
// it uses) calls. Each wrapper is the same shape:
//
//   if (ShimOff()) return real_f(args);        one load, one predictable branch
//   follower: replay the next record           the kernel is not called
//   leader:   r = real_f(args); record; return r
//
// real_f is glibc's own function (dlsym(RTLD_NEXT) at startup), so errno,
// cancellation points and vDSO use are exactly glibc's. Until it is resolved
// real_f points at a stub that resolves it on first use, so even a call from
// an earlier constructor needs no null check on the fast path.
//
// The definitions carry glibc's symbol names through asm labels: the C++
// names differ, so they do not clash with the declarations (and exception
// specifications) of the system headers this file needs for its types.
//
// Calls glibc makes internally (stdio's fwrite -> __write, getaddrinfo's
// sockets) use glibc-internal aliases and never reach these symbols: see
// docs/mve.md for the catch-all.
//
// Each entry: the libc signature, the kernel call glibc makes for it on
// x86-64 (the record's number: Schema.def) and that call's arguments.
#include "../Runtime.h"
#include "../Threads.h"
#include "Shim.h"
#include "Signals.h"
#include "Sud.h"
#include "UpdateGuard.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

using namespace mvedsua::mve;

namespace {

void *Resolve(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) {
    mvedsua::Report("error: libc has no %s: cannot interpose it", name);
    abort();
  }
  return f;
}

} // namespace

// glibc's function: real_NAME, resolved on first use by first_NAME, so the
// fast path needs no null check.
#define MVE_REAL(ret, name, params, args)                                      \
  namespace {                                                                  \
  ret first_##name params;                                                     \
  ret(*real_##name) params = first_##name;                                     \
  ret first_##name params {                                                    \
    real_##name = reinterpret_cast<ret(*) params>(Resolve(#name));             \
    return real_##name args;                                                   \
  }                                                                            \
  }

#define MVE_INTERPOSE(ret, name, params, args, nr, k0, k1, k2, k3, k4, k5)    \
  MVE_REAL(ret, name, params, args)                                            \
  MVE_SHIM_BODY(ret, name, params, args, nr, k0, k1, k2, k3, k4, k5)          \
  extern "C" MVEDSUA_EXPORT ret mve_##name params __asm__(#name);              \
  ret mve_##name params { return shim_##name args; }

// A blocking wait that may be an update point (mvedsua_wait_points): the
// point is taken before the wait and, when an update's wake-up interrupted
// it, again before the wait is made anew (Threads.h).
#define MVE_INTERPOSE_WAIT(kind, ret, name, params, args, nr, k0, k1, k2, k3,  \
                           k4, k5)                                             \
  MVE_REAL(ret, name, params, args)                                            \
  MVE_SHIM_BODY(ret, name, params, args, nr, k0, k1, k2, k3, k4, k5)          \
  extern "C" MVEDSUA_EXPORT ret mve_##name params __asm__(#name);              \
  ret mve_##name params {                                                      \
    if (__builtin_expect(!(mvedsua::g_wait_points & (kind)), 1))               \
      return shim_##name args;                                                 \
    for (;;) {                                                                 \
      mvedsua::WaitPointEnter(#name);                                          \
      ret result = shim_##name args;                                           \
      int saved = errno;                                                       \
      if (!mvedsua::WaitPointInterrupted(saved) || result != ret(-1)) {        \
        errno = saved;                                                         \
        return result;                                                         \
      }                                                                        \
    }                                                                          \
  }

// The shim's path of one call: off, replayed (follower) or recorded (leader).
// The slow path is a function of its own, so that the fast path is a load,
// a branch and a tail call, with no registers saved before the branch.
#define MVE_SHIM_BODY(ret, name, params, args, nr, k0, k1, k2, k3, k4, k5)    \
  namespace {                                                                  \
  __attribute__((noinline)) ret slow_##name params {                           \
    CallView c;                                                                \
    if (Prepare(c, nr, long(k0), long(k1), long(k2), long(k3), long(k4),       \
                long(k5)))                                                     \
      return ret(Replay(c));                                                   \
    ret result;                                                                \
    do {                                                                       \
      SudAllow(); /* the hot call itself does not trap */                      \
      result = real_##name args;                                               \
      SudBlock();                                                              \
    } while (SigRestart(nr, long(result), true)); /* Signals.h */              \
    Record(c, long(result));                                                   \
    return result;                                                             \
  }                                                                            \
  __attribute__((always_inline)) inline ret shim_##name params {               \
    if (ShimOff())                                                             \
      return real_##name args;                                                 \
    return slow_##name args;                                                   \
  }                                                                            \
  }
MVE_INTERPOSE(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n), SYS_read, fd, buf, n, 0, 0, 0)
MVE_INTERPOSE(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n), SYS_write, fd, buf, n, 0, 0, 0)
MVE_INTERPOSE(ssize_t, pread, (int fd, void *buf, size_t n, off_t off), (fd, buf, n, off), SYS_pread64, fd, buf, n, off, 0, 0)
MVE_INTERPOSE(ssize_t, pwrite, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off), SYS_pwrite64, fd, buf, n, off, 0, 0)
MVE_INTERPOSE(ssize_t, readv, (int fd, const struct iovec *iov, int n), (fd, iov, n), SYS_readv, fd, iov, n, 0, 0, 0)
MVE_INTERPOSE(ssize_t, writev, (int fd, const struct iovec *iov, int n), (fd, iov, n), SYS_writev, fd, iov, n, 0, 0, 0)
MVE_INTERPOSE(ssize_t, recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags), SYS_recvfrom, fd, buf, n, flags, 0, 0)
MVE_INTERPOSE(ssize_t, recvfrom, (int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *len), (fd, buf, n, flags, addr, len), SYS_recvfrom, fd, buf, n, flags, addr, len)
MVE_INTERPOSE(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags), SYS_recvmsg, fd, msg, flags, 0, 0, 0)
MVE_INTERPOSE(ssize_t, send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags), SYS_sendto, fd, buf, n, flags, 0, 0)
MVE_INTERPOSE(ssize_t, sendto, (int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len), (fd, buf, n, flags, addr, len), SYS_sendto, fd, buf, n, flags, addr, len)
MVE_INTERPOSE(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags), SYS_sendmsg, fd, msg, flags, 0, 0, 0)
MVE_INTERPOSE(int, connect, (int fd, const struct sockaddr *addr, socklen_t len), (fd, addr, len), SYS_connect, fd, addr, len, 0, 0, 0)
MVE_INTERPOSE(int, socket, (int domain, int type, int proto), (domain, type, proto), SYS_socket, domain, type, proto, 0, 0, 0)
MVE_INTERPOSE(int, socketpair, (int domain, int type, int proto, int *fds), (domain, type, proto, fds), SYS_socketpair, domain, type, proto, fds, 0, 0)
MVE_INTERPOSE(int, bind, (int fd, const struct sockaddr *addr, socklen_t len), (fd, addr, len), SYS_bind, fd, addr, len, 0, 0, 0)
MVE_INTERPOSE(int, listen, (int fd, int backlog), (fd, backlog), SYS_listen, fd, backlog, 0, 0, 0, 0)
MVE_INTERPOSE(int, setsockopt, (int fd, int level, int name, const void *val, socklen_t len), (fd, level, name, val, len), SYS_setsockopt, fd, level, name, val, len, 0)
MVE_INTERPOSE(int, getsockopt, (int fd, int level, int name, void *val, socklen_t *len), (fd, level, name, val, len), SYS_getsockopt, fd, level, name, val, len, 0)
MVE_INTERPOSE(int, getsockname, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len), SYS_getsockname, fd, addr, len, 0, 0, 0)
MVE_INTERPOSE(int, getpeername, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len), SYS_getpeername, fd, addr, len, 0, 0, 0)
MVE_INTERPOSE(int, shutdown, (int fd, int how), (fd, how), SYS_shutdown, fd, how, 0, 0, 0, 0)
MVE_INTERPOSE(int, close, (int fd), (fd), SYS_close, fd, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, pipe, (int *fds), (fds), SYS_pipe2, fds, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, pipe2, (int *fds, int flags), (fds, flags), SYS_pipe2, fds, flags, 0, 0, 0, 0)
MVE_INTERPOSE(int, dup, (int fd), (fd), SYS_dup, fd, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, dup2, (int fd, int to), (fd, to), SYS_dup2, fd, to, 0, 0, 0, 0)
MVE_INTERPOSE(int, dup3, (int fd, int to, int flags), (fd, to, flags), SYS_dup3, fd, to, flags, 0, 0, 0)
MVE_INTERPOSE(int, epoll_create, (int size), (size), SYS_epoll_create, size, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, epoll_create1, (int flags), (flags), SYS_epoll_create1, flags, 0, 0, 0, 0, 0)
// epoll_ctl is checked while a follower updates (UpdateGuard.h).
MVE_REAL(int, epoll_ctl, (int fd, int op, int target, struct epoll_event *ev), (fd, op, target, ev))
MVE_SHIM_BODY(int, epoll_ctl, (int fd, int op, int target, struct epoll_event *ev), (fd, op, target, ev), SYS_epoll_ctl, fd, op, target, ev, 0, 0)
extern "C" MVEDSUA_EXPORT int mve_epoll_ctl(int fd, int op, int target, struct epoll_event *ev) __asm__("epoll_ctl");
int mve_epoll_ctl(int fd, int op, int target, struct epoll_event *ev) {
  if (__builtin_expect(__atomic_load_n(&mvedsua::mve::g_update_guard, __ATOMIC_ACQUIRE), 0))
    mvedsua::mve::GuardEpollCtl(fd, op, target);
  return shim_epoll_ctl(fd, op, target, ev);
}
MVE_INTERPOSE_WAIT(mvedsua::kWaitEpoll, int, epoll_wait, (int fd, struct epoll_event *evs, int max, int timeout), (fd, evs, max, timeout), SYS_epoll_wait, fd, evs, max, timeout, 0, 0)
MVE_INTERPOSE_WAIT(mvedsua::kWaitEpoll, int, epoll_pwait, (int fd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask), (fd, evs, max, timeout, mask), SYS_epoll_pwait, fd, evs, max, timeout, mask, 0)
MVE_INTERPOSE_WAIT(mvedsua::kWaitPoll, int, poll, (struct pollfd *fds, nfds_t n, int timeout), (fds, n, timeout), SYS_poll, fds, n, timeout, 0, 0, 0)
MVE_INTERPOSE_WAIT(mvedsua::kWaitPoll, int, ppoll, (struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask), (fds, n, ts, mask), SYS_ppoll, fds, n, ts, mask, 0, 0)
MVE_INTERPOSE_WAIT(mvedsua::kWaitSelect, int, select, (int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv), (n, rd, wr, ex, tv), SYS_select, n, rd, wr, ex, tv, 0)

// accept on a blocking socket is restarted by the kernel after the wake
// signal (SA_RESTART), so as a wait point it first waits in poll, which an
// update's wake-up interrupts; then it accepts (and may still block when
// another thread took the connection, as accept would).
namespace {
void AcceptWaitPoint(int fd) {
  if (__builtin_expect(!(mvedsua::g_wait_points & mvedsua::kWaitAccept), 1))
    return;
  int saved = errno;
  int flags = fcntl(fd, F_GETFL);
  struct pollfd p = {fd, POLLIN, 0};
  while (flags >= 0 && !(flags & O_NONBLOCK)) {
    mvedsua::WaitPointEnter("accept");
    int r = shim_poll(&p, 1, -1);
    if (!mvedsua::WaitPointInterrupted(errno) || r != -1)
      break;
  }
  errno = saved;
}
} // namespace

#define MVE_INTERPOSE_ACCEPT(name, params, args, nr, k0, k1, k2, k3)          \
  MVE_REAL(int, name, params, args)                                            \
  MVE_SHIM_BODY(int, name, params, args, nr, k0, k1, k2, k3, 0, 0)            \
  extern "C" MVEDSUA_EXPORT int mve_##name params __asm__(#name);              \
  int mve_##name params {                                                      \
    AcceptWaitPoint(fd);                                                       \
    return shim_##name args;                                                   \
  }
MVE_INTERPOSE_ACCEPT(accept, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len), SYS_accept, fd, addr, len, 0)
MVE_INTERPOSE_ACCEPT(accept4, (int fd, struct sockaddr *addr, socklen_t *len, int flags), (fd, addr, len, flags), SYS_accept4, fd, addr, len, flags)
MVE_INTERPOSE(int, eventfd, (unsigned int init, int flags), (init, flags), SYS_eventfd2, init, flags, 0, 0, 0, 0)
MVE_INTERPOSE(int, timerfd_create, (int clock, int flags), (clock, flags), SYS_timerfd_create, clock, flags, 0, 0, 0, 0)
MVE_INTERPOSE(int, timerfd_settime, (int fd, int flags, const struct itimerspec *val, struct itimerspec *old), (fd, flags, val, old), SYS_timerfd_settime, fd, flags, val, old, 0, 0)
MVE_INTERPOSE(int, timerfd_gettime, (int fd, struct itimerspec *cur), (fd, cur), SYS_timerfd_gettime, fd, cur, 0, 0, 0, 0)
MVE_INTERPOSE(off_t, lseek, (int fd, off_t off, int whence), (fd, off, whence), SYS_lseek, fd, off, whence, 0, 0, 0)
MVE_INTERPOSE(int, fstat, (int fd, struct stat *st), (fd, st), SYS_newfstatat, fd, "", st, AT_EMPTY_PATH, 0, 0)
MVE_INTERPOSE(int, stat, (const char *path, struct stat *st), (path, st), SYS_newfstatat, AT_FDCWD, path, st, 0, 0, 0)
MVE_INTERPOSE(int, lstat, (const char *path, struct stat *st), (path, st), SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW, 0, 0)
MVE_INTERPOSE(int, fstatat, (int dir, const char *path, struct stat *st, int flags), (dir, path, st, flags), SYS_newfstatat, dir, path, st, flags, 0, 0)
MVE_INTERPOSE(int, ftruncate, (int fd, off_t len), (fd, len), SYS_ftruncate, fd, len, 0, 0, 0, 0)
MVE_INTERPOSE(int, fsync, (int fd), (fd), SYS_fsync, fd, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, fdatasync, (int fd), (fd), SYS_fdatasync, fd, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, unlink, (const char *path), (path), SYS_unlinkat, AT_FDCWD, path, 0, 0, 0, 0)
MVE_INTERPOSE(int, rename, (const char *from, const char *to), (from, to), SYS_rename, from, to, 0, 0, 0, 0)
MVE_INTERPOSE(int, mkdir, (const char *path, mode_t mode), (path, mode), SYS_mkdir, path, mode, 0, 0, 0, 0)
MVE_INTERPOSE(int, access, (const char *path, int mode), (path, mode), SYS_faccessat, AT_FDCWD, path, mode, 0, 0, 0)
MVE_INTERPOSE(int, clock_gettime, (clockid_t clock, struct timespec *ts), (clock, ts), SYS_clock_gettime, clock, ts, 0, 0, 0, 0)
MVE_INTERPOSE(int, gettimeofday, (struct timeval *tv, void *tz), (tv, tz), SYS_gettimeofday, tv, tz, 0, 0, 0, 0)
MVE_INTERPOSE(time_t, time, (time_t *t), (t), SYS_time, t, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, nanosleep, (const struct timespec *req, struct timespec *rem), (req, rem), SYS_nanosleep, req, rem, 0, 0, 0, 0)
MVE_INTERPOSE(int, clock_nanosleep, (clockid_t clock, int flags, const struct timespec *req, struct timespec *rem), (clock, flags, req, rem), SYS_clock_nanosleep, clock, flags, req, rem, 0, 0)
MVE_INTERPOSE(ssize_t, getrandom, (void *buf, size_t n, unsigned int flags), (buf, n, flags), SYS_getrandom, buf, n, flags, 0, 0, 0)
MVE_INTERPOSE(pid_t, getpid, (void), (), SYS_getpid, 0, 0, 0, 0, 0, 0)
MVE_INTERPOSE(pid_t, getppid, (void), (), SYS_getppid, 0, 0, 0, 0, 0, 0)
MVE_INTERPOSE(int, kill, (pid_t pid, int sig), (pid, sig), SYS_kill, pid, sig, 0, 0, 0, 0)

// Variadic ones: the optional argument is read only when the call has one,
// so garbage never reaches the comparison.
namespace {
int (*real_open)(const char *, int, ...);
int (*real_openat)(int, const char *, int, ...);
int (*real_fcntl)(int, int, ...);
int (*real_ioctl)(int, unsigned long, ...);
void (*real_exit)(int);
void (*real__exit)(int);

bool TakesMode(int flags) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

template <class F> void ResolveOnce(F *&slot, const char *name) {
  if (!slot)
    slot = reinterpret_cast<F *>(Resolve(name));
}

} // namespace

extern "C" MVEDSUA_EXPORT int mve_openat(int dir, const char *path, int flags,
                                         ...) __asm__("openat");
int mve_openat(int dir, const char *path, int flags, ...) {
  mode_t mode = 0;
  if (TakesMode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  ResolveOnce(real_openat, "openat");
  if (ShimOff())
    return real_openat(dir, path, flags, mode);
  CallView c;
  if (Prepare(c, SYS_openat, dir, long(path), flags, mode, 0, 0))
    return int(Replay(c));
  int r;
  do {
    SudAllow();
    r = real_openat(dir, path, flags, mode);
    SudBlock();
  } while (SigRestart(SYS_openat, r, true));
  Record(c, r);
  return r;
}

extern "C" MVEDSUA_EXPORT int mve_open(const char *path, int flags, ...)
    __asm__("open");
int mve_open(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (TakesMode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  ResolveOnce(real_open, "open");
  if (ShimOff())
    return real_open(path, flags, mode);
  CallView c;
  if (Prepare(c, SYS_openat, AT_FDCWD, long(path), flags, mode, 0, 0))
    return int(Replay(c));
  int r;
  do {
    SudAllow();
    r = real_open(path, flags, mode);
    SudBlock();
  } while (SigRestart(SYS_openat, r, true));
  Record(c, r);
  return r;
}

extern "C" MVEDSUA_EXPORT int mve_fcntl(int fd, int cmd, ...)
    __asm__("fcntl");
int mve_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long); // glibc reads it the same way, needed or not
  va_end(ap);
  ResolveOnce(real_fcntl, "fcntl");
  if (ShimOff())
    return real_fcntl(fd, cmd, arg);
  CallView c;
  if (Prepare(c, SYS_fcntl, fd, cmd, arg, 0, 0, 0))
    return int(Replay(c));
  int r;
  do {
    SudAllow();
    r = real_fcntl(fd, cmd, arg);
    SudBlock();
  } while (SigRestart(SYS_fcntl, r, true));
  Record(c, r);
  return r;
}

extern "C" MVEDSUA_EXPORT int mve_ioctl(int fd, unsigned long req, ...)
    __asm__("ioctl");
int mve_ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  long arg = va_arg(ap, long);
  va_end(ap);
  ResolveOnce(real_ioctl, "ioctl");
  if (ShimOff())
    return real_ioctl(fd, req, arg);
  CallView c;
  if (Prepare(c, SYS_ioctl, fd, long(req), arg, 0, 0, 0))
    return int(Replay(c));
  int r;
  do {
    SudAllow();
    r = real_ioctl(fd, req, arg);
    SudBlock();
  } while (SigRestart(SYS_ioctl, r, true));
  Record(c, r);
  return r;
}

// exit runs the program's atexit handlers, whose calls are recorded or
// replayed after the exit record; _exit and _Exit end at once.
extern "C" MVEDSUA_EXPORT void mve_exit(int status) __asm__("exit");
void mve_exit(int status) {
  ResolveOnce(real_exit, "exit");
  if (!ShimOff() || FollowerPending())
    OnExit(status, true);
  real_exit(status);
  __builtin_unreachable();
}

extern "C" MVEDSUA_EXPORT void mve__exit(int status) __asm__("_exit");
void mve__exit(int status) {
  ResolveOnce(real__exit, "_exit");
  if (!ShimOff() || FollowerPending())
    OnExit(status, false);
  real__exit(status);
  __builtin_unreachable();
}

extern "C" MVEDSUA_EXPORT void mve__Exit(int status) __asm__("_Exit");
void mve__Exit(int status) { mve__exit(status); }
