// Schema.cpp: Schema.def as a table by syscall number, and the argument walks
// that recording (leader) and replaying (follower) share, so the two sides
// cannot disagree on what a call sends or receives.
#include "Schema.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

namespace mvedsua {
namespace mve {
namespace {

constexpr ArgSpec X = {kX, 0, 0}, S = {kS, 0, 0}, P = {kP, 0, 0},
                  STR = {kStr, 0, 0}, LENPTR = {kLenPtr, 0, 0},
                  MSGIN = {kMsgIn, 0, 0}, MSGOUT = {kMsgOut, 0, 0},
                  EPEVIN = {kEpevIn, 0, 0}, EPEVOUT = {kEpevOut, 0, 0},
                  FCNTLARG = {kFcntlArg, 0, 0}, IOCTLARG = {kIoctlArg, 0, 0};
constexpr ArgSpec IN(int n) { return {kIn, uint8_t(n), 0}; }
constexpr ArgSpec INF(int size) { return {kInF, 0, uint16_t(size)}; }
constexpr ArgSpec OUTR(int n) { return {kOutR, uint8_t(n), 0}; }
constexpr ArgSpec OUTF(int size) { return {kOutF, 0, uint16_t(size)}; }
constexpr ArgSpec INOUTF(int size) { return {kInOutF, 0, uint16_t(size)}; }
constexpr ArgSpec LENBUF(int n) { return {kLenBuf, uint8_t(n), 0}; }
constexpr ArgSpec IOVIN(int n) { return {kIovIn, uint8_t(n), 0}; }
constexpr ArgSpec IOVOUT(int n) { return {kIovOut, uint8_t(n), 0}; }
constexpr ArgSpec POLLFD(int n) { return {kPollFd, uint8_t(n), 0}; }
constexpr ArgSpec FDSET(int n) { return {kFdSet, uint8_t(n), 0}; }
constexpr CallClass REPLAY = kReplay, EXIT = kExit;

struct Entry {
  long nr;
  Spec spec;
};

const Entry kEntries[] = {
#define MVE_SYSCALL(name, cls, a0, a1, a2, a3, a4, a5)                        \
  {SYS_##name, {#name, cls, {a0, a1, a2, a3, a4, a5}}},
#include "Schema.def"
#undef MVE_SYSCALL
};

const Spec kUnlisted = {nullptr, kLocal, {X, X, X, X, X, X}};

// Filled once by the layer's constructor (a static table by number: the
// lookup on every trapped call is an index).
struct Table {
  const Spec *by_nr[kMaxSyscall];
  Table() {
    for (auto &p : by_nr)
      p = &kUnlisted;
    for (const Entry &e : kEntries)
      by_nr[e.nr] = &e.spec;
  }
};
const Table g_table;

uint64_t FdSetBytes(long nfds) {
  if (nfds <= 0)
    return 0;
  uint64_t n = (uint64_t(nfds) + 63) / 64 * 8;
  return n > 128 ? 128 : n;
}

// fcntl's third argument by command: how many bytes it points to, in and
// out; -1 when it is an int, 0 when there is none.
struct Shape {
  int in;
  int out;
};

Shape FcntlShape(long cmd) {
  switch (cmd) {
  case F_GETLK: case F_OFD_GETLK: return {int(sizeof(flock)), int(sizeof(flock))};
  case F_SETLK: case F_SETLKW: case F_OFD_SETLK: case F_OFD_SETLKW:
    return {int(sizeof(flock)), 0};
  case F_GETOWN_EX: return {0, int(sizeof(f_owner_ex))};
  case F_SETOWN_EX: return {int(sizeof(f_owner_ex)), 0};
  case F_GETFD: case F_GETFL: case F_GETOWN: case F_GETSIG: case F_GETLEASE:
  case F_GETPIPE_SZ: case F_GET_SEALS: return {0, 0};
  default: return {-1, -1};
  }
}

// ioctl's third argument by request: the common legacy terminal and socket
// requests by name, the others by the size and direction _IOC encodes.
Shape IoctlShape(unsigned long req) {
  switch (req) {
  case FIONREAD: case TIOCOUTQ: return {0, 4};
  case FIONBIO: case FIOASYNC: return {4, 0};
  case TCGETS: return {0, 36};
  case TCSETS: case TCSETSW: case TCSETSF: return {36, 0};
  case TIOCGWINSZ: return {0, 8};
  case TIOCSWINSZ: return {8, 0};
  case FIOCLEX: case FIONCLEX: return {0, 0};
  default: break;
  }
  int size = int(_IOC_SIZE(req)), dir = int(_IOC_DIR(req));
  if (_IOC_TYPE(req) == 'T' || size == 0)
    return {-1, -1};
  return {(dir & _IOC_WRITE) ? size : 0, (dir & _IOC_READ) ? size : 0};
}

Shape ThirdArgShape(const CallView &c, ArgKind kind) {
  return kind == kFcntlArg ? FcntlShape(c.a[1])
                           : IoctlShape(static_cast<unsigned long>(c.a[1]));
}

void InMsg(const msghdr *m, InFn f, void *ctx) {
  if (m->msg_name)
    f(ctx, m->msg_name, m->msg_namelen);
  for (size_t j = 0; j < m->msg_iovlen; ++j)
    f(ctx, m->msg_iov[j].iov_base, m->msg_iov[j].iov_len);
  if (m->msg_control)
    f(ctx, m->msg_control, m->msg_controllen);
}

constexpr uint16_t kInOutKept = sizeof CallView::inout[0];

void InArg(const CallView &c, int i, InFn f, void *ctx) {
  const ArgSpec &s = SpecOf(c.nr).args[i];
  void *p = reinterpret_cast<void *>(c.a[i]);
  switch (s.kind) {
  case kStr: if (p) f(ctx, p, strlen(static_cast<char *>(p)) + 1); break;
  case kIn: if (p) f(ctx, p, uint64_t(c.a[s.arg])); break;
  case kInF: if (p) f(ctx, p, s.size); break;
  case kInOutF:
    if (p)
      f(ctx, s.size <= kInOutKept ? c.inout[i] : p, s.size);
    break;
  case kIovIn: {
    const iovec *iov = static_cast<const iovec *>(p);
    for (long j = 0; iov && j < c.a[s.arg]; ++j)
      f(ctx, iov[j].iov_base, iov[j].iov_len);
    break;
  }
  case kMsgIn: if (p) InMsg(static_cast<msghdr *>(p), f, ctx); break;
  case kEpevIn: if (p) f(ctx, &static_cast<epoll_event *>(p)->events, 4); break;
  case kPollFd: {
    pollfd *fds = static_cast<pollfd *>(p);
    for (long j = 0; fds && j < c.a[s.arg]; ++j) {
      f(ctx, &fds[j].fd, sizeof fds[j].fd);
      f(ctx, &fds[j].events, sizeof fds[j].events);
    }
    break;
  }
  case kFdSet: if (p) f(ctx, p, FdSetBytes(c.a[s.arg])); break;
  case kFcntlArg: case kIoctlArg: {
    Shape sh = ThirdArgShape(c, s.kind);
    if (sh.in > 0 && p)
      f(ctx, p, uint64_t(sh.in));
    break;
  }
  default: break;
  }
}

void OutScatter(const iovec *iov, long n, uint64_t left, OutFn f, void *ctx) {
  for (long j = 0; iov && j < n && left > 0; ++j) {
    uint64_t k = iov[j].iov_len < left ? iov[j].iov_len : left;
    f(ctx, iov[j].iov_base, k);
    left -= k;
  }
}

uint64_t Min(uint64_t a, uint64_t b) { return a < b ? a : b; }

// recvmsg: data, then the lengths the kernel wrote, each before the bytes
// it measures, so the follower sizes the next copy from the copied length.
void OutMsg(const CallView &c, msghdr *m, OutFn f, void *ctx) {
  OutScatter(m->msg_iov, long(m->msg_iovlen), uint64_t(c.ret), f, ctx);
  f(ctx, &m->msg_namelen, sizeof m->msg_namelen);
  if (m->msg_name)
    f(ctx, m->msg_name, Min(c.before[6], m->msg_namelen));
  f(ctx, &m->msg_controllen, sizeof m->msg_controllen);
  if (m->msg_control)
    f(ctx, m->msg_control, Min(c.before[7], m->msg_controllen));
  f(ctx, &m->msg_flags, sizeof m->msg_flags);
}

void OutArg(const CallView &c, int i, const ArgSpec &s, OutFn f, void *ctx) {
  void *p = reinterpret_cast<void *>(c.a[i]);
  switch (s.kind) {
  case kOutR: if (p) f(ctx, p, Min(uint64_t(c.ret), uint64_t(c.a[s.arg]))); break;
  case kOutF: case kInOutF: if (p) f(ctx, p, s.size); break;
  case kLenBuf: {
    socklen_t *len = reinterpret_cast<socklen_t *>(c.a[s.arg]);
    if (!len)
      break;
    f(ctx, len, sizeof *len);
    if (p)
      f(ctx, p, Min(c.before[s.arg], *len));
    break;
  }
  case kIovOut:
    OutScatter(static_cast<iovec *>(p), c.a[s.arg], uint64_t(c.ret), f, ctx);
    break;
  case kMsgOut: if (p) OutMsg(c, static_cast<msghdr *>(p), f, ctx); break;
  case kEpevOut:
    if (p && c.ret > 0) f(ctx, p, uint64_t(c.ret) * sizeof(epoll_event));
    break;
  case kPollFd: {
    pollfd *fds = static_cast<pollfd *>(p);
    for (long j = 0; fds && j < c.a[s.arg]; ++j)
      f(ctx, &fds[j].revents, sizeof fds[j].revents);
    break;
  }
  case kFdSet: if (p) f(ctx, p, FdSetBytes(c.a[s.arg])); break;
  case kFcntlArg: case kIoctlArg: {
    Shape sh = ThirdArgShape(c, s.kind);
    if (sh.out > 0 && p)
      f(ctx, p, uint64_t(sh.out));
    break;
  }
  default: break;
  }
}

} // namespace

const Spec &SpecOf(long nr) {
  return (nr >= 0 && nr < kMaxSyscall) ? *g_table.by_nr[nr] : kUnlisted;
}

bool Publishes(long nr) {
  switch (nr) {
  case SYS_write: case SYS_pwrite64: case SYS_writev: case SYS_pwritev:
  case SYS_pwritev2: case SYS_sendto: case SYS_sendmsg: case SYS_sendfile:
  case SYS_copy_file_range: case SYS_shutdown: case SYS_epoll_ctl:
  case SYS_timerfd_settime: case SYS_kill: case SYS_tkill: case SYS_tgkill:
  case SYS_rt_sigqueueinfo: case SYS_rt_tgsigqueueinfo:
  case SYS_pidfd_send_signal: case SYS_close: case SYS_dup2: case SYS_dup3:
    return true;
  default:
    return false;
  }
}

bool Receives(long nr) {
  switch (nr) {
  case SYS_read: case SYS_pread64: case SYS_readv: case SYS_preadv:
  case SYS_preadv2: case SYS_recvfrom: case SYS_recvmsg: case SYS_accept:
  case SYS_accept4: case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_poll:
  case SYS_ppoll: case SYS_select: case SYS_pselect6: case SYS_wait4:
  case SYS_rt_sigtimedwait: case SYS_mvedsua_shared_value:
    return true;
  default:
    return false;
  }
}

const char *SyscallName(long nr) {
  const char *name = SpecOf(nr).name;
  if (name)
    return name;
  static __thread char buf[24];
  snprintf(buf, sizeof buf, "syscall_%ld", nr);
  return buf;
}

void CaptureBefore(CallView &c) {
  const Spec &spec = SpecOf(c.nr);
  for (int i = 0; i < 6; ++i) {
    c.before[i] = 0;
    if (spec.args[i].kind == kLenPtr && c.a[i])
      c.before[i] = *reinterpret_cast<socklen_t *>(c.a[i]);
    if (spec.args[i].kind == kInOutF && c.a[i] &&
        spec.args[i].size <= kInOutKept)
      memcpy(c.inout[i], reinterpret_cast<void *>(c.a[i]), spec.args[i].size);
    if (spec.args[i].kind == kMsgOut && c.a[i]) {
      const msghdr *m = reinterpret_cast<const msghdr *>(c.a[i]);
      c.before[6] = m->msg_name ? m->msg_namelen : 0;
      c.before[7] = m->msg_control ? m->msg_controllen : 0;
    }
  }
}

void CompareValues(const CallView &c, int64_t out[6]) {
  const Spec &spec = SpecOf(c.nr);
  for (int i = 0; i < 6; ++i) {
    const ArgSpec &s = spec.args[i];
    switch (s.kind) {
    case kX: out[i] = 0; break;
    case kS: out[i] = c.a[i]; break;
    case kLenPtr: out[i] = c.a[i] ? int64_t(c.before[i]) : -1; break;
    case kFcntlArg: case kIoctlArg: {
      Shape sh = ThirdArgShape(c, s.kind);
      out[i] = sh.in < 0 ? c.a[i] : (sh.in == 0 && sh.out == 0) ? 0 : c.a[i] != 0;
      break;
    }
    default: out[i] = c.a[i] != 0; break; // pointers: nullness only
    }
  }
}

void VisitIn(const CallView &c, InFn f, void *ctx) {
  for (int i = 0; i < 6; ++i)
    InArg(c, i, f, ctx);
}

void VisitOut(const CallView &c, OutFn f, void *ctx) {
  if (c.ret < 0)
    return; // failed calls fill nothing the program may read
  const Spec &spec = SpecOf(c.nr);
  for (int i = 0; i < 6; ++i)
    OutArg(c, i, spec.args[i], f, ctx);
}

} // namespace mve
} // namespace mvedsua
