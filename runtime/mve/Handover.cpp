// Handover.cpp: descriptors passed from the leader to the follower
// (Handover.h, docs/mve.md "Descriptors and the hand-over").
#include "Handover.h"
#include "../Runtime.h"
#include "Raw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <initializer_list>

namespace mvedsua {
namespace mve {
namespace {

// One message: up to kPerMessage descriptors (the kernel's SCM_MAX_FD is
// 253), with the numbers they must get and their close-on-exec flags.
constexpr int kPerMessage = 250;
struct Payload {
  uint32_t count;
  int32_t number[kPerMessage];
  uint8_t cloexec[kPerMessage];
};

// One socket pair per lane (thread pair): the descriptors a thread's records
// carry travel on its lane's pair, in that lane's record order, so that
// follower threads replaying at their own pace each receive their own.
struct LaneEnds {
  int end[2] = {-1, -1}; // [0] the leader's end at creation, [1] the follower's
  int mine = -1;         // the end this process keeps
};
LaneEnds g_lane[kMaxLanes];
int g_n_ends; // lanes with a pair
__thread __attribute__((tls_model("initial-exec"))) int t_lane;
bool g_live;             // leader: the table was sent; records carry fds
bool g_holds_all;        // follower: it has every descriptor of the leader

// The follower's copies of the leader's descriptors.
constexpr int kMaxTracked = 1 << 16;
uint64_t g_mirror[kMaxTracked / 64];

bool FdOpen(int fd) { return RawSyscall(SYS_fcntl, fd, F_GETFD) >= 0; }

bool Mirrored(int fd) {
  return fd >= 0 && fd < kMaxTracked &&
         (__atomic_load_n(&g_mirror[fd / 64], __ATOMIC_RELAXED) >> (fd % 64) &
          1);
}
// Atomic: the threads of a follower install and release at once.
void SetMirror(int fd, bool on) {
  if (fd < 0 || fd >= kMaxTracked)
    return;
  uint64_t bit = uint64_t(1) << (fd % 64);
  if (on)
    __atomic_fetch_or(&g_mirror[fd / 64], bit, __ATOMIC_RELAXED);
  else
    __atomic_fetch_and(&g_mirror[fd / 64], ~bit, __ATOMIC_RELAXED);
}

// The calling thread's end of its lane's pair.
int MyEnd() { return t_lane >= 0 && t_lane < g_n_ends ? g_lane[t_lane].mine : -1; }

// The program's descriptors: not the runtime's, not the supervisor channel
// (which travels on its own at promotion).
bool ProgramFd(int fd) {
  return fd >= 0 && !IsRuntimeFd(fd) && fd != SupervisorFd();
}

long SendMessage(int sock, const Payload &p, const int *fds) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * kPerMessage)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {const_cast<Payload *>(&p), sizeof p};
  struct msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.buf;
  m.msg_controllen = CMSG_SPACE(sizeof(int) * p.count);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * p.count);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * p.count);
  // Never blocks the leader: a full socket (a follower far behind) fails.
  return RawSyscall(SYS_sendmsg, sock, long(&m),
                    MSG_DONTWAIT | MSG_NOSIGNAL);
}

// Sends the descriptors `fds` under the numbers `numbers` on `sock`, in
// messages of at most kPerMessage. Returns how many, or -errno.
int SendFds(int sock, const int *fds, const int *numbers, int n) {
  Payload p;
  for (int done = 0; done < n;) {
    p.count = uint32_t(n - done < kPerMessage ? n - done : kPerMessage);
    for (uint32_t i = 0; i < p.count; ++i) {
      p.number[i] = numbers[done + int(i)];
      long fl = RawSyscall(SYS_fcntl, fds[done + int(i)], F_GETFD);
      p.cloexec[i] = fl >= 0 && (fl & FD_CLOEXEC);
    }
    long r = SendMessage(sock, p, fds + done);
    if (r < 0)
      return int(r);
    done += int(p.count);
  }
  return n;
}

// The descriptors a call made, by the leader's numbers.
int CreatedFds(const CallView &c, long ret, int out[kPerMessage]) {
  if (ret < 0)
    return 0;
  switch (c.nr) {
  case SYS_accept: case SYS_accept4: case SYS_socket: case SYS_open:
  case SYS_openat: case SYS_dup: case SYS_dup2: case SYS_dup3:
  case SYS_epoll_create: case SYS_epoll_create1: case SYS_eventfd:
  case SYS_eventfd2: case SYS_timerfd_create:
    out[0] = int(ret);
    return 1;
  case SYS_fcntl:
    if (c.a[1] != F_DUPFD && c.a[1] != F_DUPFD_CLOEXEC)
      return 0;
    out[0] = int(ret);
    return 1;
  case SYS_pipe: case SYS_pipe2: case SYS_socketpair: {
    const int *pair = reinterpret_cast<const int *>(
        c.nr == SYS_socketpair ? c.a[3] : c.a[0]);
    out[0] = pair[0], out[1] = pair[1];
    return 2;
  }
  case SYS_recvmsg: {
    const struct msghdr *m = reinterpret_cast<const struct msghdr *>(c.a[1]);
    int n = 0;
    if (!m || !m->msg_control)
      return 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h;
         h = CMSG_NXTHDR(const_cast<struct msghdr *>(m), h))
      if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
        for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int) &&
                           n < kPerMessage;
             ++i)
          memcpy(&out[n++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
    return n;
  }
  default:
    return 0;
  }
}

// Receives one message into fds moved above the program's numbers (so that
// installing one cannot close another still to be installed).
const char *ReceiveMessage(int sock, Payload *p, int *fds) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * kPerMessage)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {p, sizeof *p};
  struct msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof ctl.buf;
  long r;
  do
    r = RawSyscall(SYS_recvmsg, sock, long(&m), MSG_CMSG_CLOEXEC);
  while (r == -EINTR);
  if (r != long(sizeof *p))
    return "the descriptor hand-over socket failed";
  if (m.msg_flags & MSG_CTRUNC)
    return "descriptors handed over were lost (the follower's descriptor "
           "limit)";
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int) * p->count))
    return "a hand-over message came without its descriptors";
  memcpy(fds, CMSG_DATA(c), sizeof(int) * p->count);
  int above = 0;
  for (uint32_t i = 0; i < p->count; ++i)
    above = p->number[i] >= above ? p->number[i] + 1 : above;
  for (uint32_t i = 0; i < p->count; ++i) {
    long high = RawSyscall(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, above);
    if (high >= 0) {
      RawSyscall(SYS_close, fds[i]);
      fds[i] = int(high);
    }
  }
  return nullptr;
}

// Puts the leader's descriptor at its number (and closes `fd`). A number the
// follower uses for a descriptor of its own is a collision, unless `force`.
const char *Install(int fd, int number, bool cloexec, bool force) {
  static char why[160];
  if (!force && (number == SupervisorFd() || IsRuntimeFd(number) ||
                 (!Mirrored(number) && FdOpen(number)))) {
    RawSyscall(SYS_close, fd);
    snprintf(why, sizeof why,
             "descriptor %d of the leader collides with one the new version "
             "opened for itself",
             number);
    return why;
  }
  RawSyscall(SYS_dup3, fd, number, cloexec ? O_CLOEXEC : 0);
  RawSyscall(SYS_close, fd);
  if (!force)
    SetMirror(number, true);
  return nullptr;
}

// Calls f(fd) for each open descriptor of the program, read from
// /proc/self/fd with raw getdents64 (no allocation), in increasing order
// within each batch. Probing every possible number instead would cost tens
// of thousands of system calls, a pause the leader's clients would see.
// Without /proc: the numbers below the descriptor limit are probed.
template <class F> void ForEachProgramFd(F f) {
  long dir = RawSyscall(SYS_openat, AT_FDCWD, long("/proc/self/fd"),
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    struct rlimit lim = {kMaxTracked, kMaxTracked};
    RawSyscall(SYS_getrlimit, RLIMIT_NOFILE, long(&lim));
    for (long fd = 0; fd < long(lim.rlim_cur) && fd < kMaxTracked; ++fd)
      if (ProgramFd(int(fd)) && FdOpen(int(fd)))
        f(int(fd));
    return;
  }
  alignas(8) static char buf[8192];
  long n;
  while ((n = RawSyscall(SYS_getdents64, dir, long(buf), sizeof buf)) > 0) {
    for (long at = 0; at < n;) {
      auto *d = reinterpret_cast<struct dirent64 *>(buf + at);
      at += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9')
        continue;
      long fd = 0;
      for (const char *c = d->d_name; *c; ++c)
        fd = fd * 10 + (*c - '0');
      if (fd != dir && fd < kMaxTracked && ProgramFd(int(fd)))
        f(int(fd));
    }
  }
  RawSyscall(SYS_close, dir);
}

} // namespace

bool HandoverIsRuntimeFd(int fd) { return !ProgramFd(fd); }

namespace {

// A pair for lane k, both ends above the program's numbers.
bool CreatePair(int k, char *err, size_t size) {
  int pair[2];
  long r = RawSyscall(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
                      0, long(pair));
  if (r < 0) {
    snprintf(err, size, "socketpair: %s", strerror(int(-r)));
    return false;
  }
  // Room for many messages in flight: a follower catching up reads them late.
  int big = 8 << 20;
  for (int fd : pair)
    if (RawSyscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDBUFFORCE, long(&big),
                   sizeof big) < 0)
      RawSyscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDBUF, long(&big),
                 sizeof big);
  g_lane[k].end[0] = MoveFdHigh(pair[0]);
  g_lane[k].end[1] = MoveFdHigh(pair[1]);
  return true;
}

} // namespace

bool HandoverCreate(int lanes, char *err, size_t size) {
  HandoverDestroy();
  for (int k = 0; k < lanes; ++k) {
    if (!CreatePair(k, err, size)) {
      HandoverDestroy();
      return false;
    }
    g_n_ends = k + 1;
  }
  g_live = false;
  return true;
}

void HandoverKeepEnd(bool leader) {
  for (int k = 0; k < g_n_ends; ++k) {
    LaneEnds &l = g_lane[k];
    l.mine = l.end[leader ? 0 : 1];
    CloseRuntimeFd(l.end[leader ? 1 : 0]);
    l.end[0] = l.end[1] = -1;
  }
}

void HandoverDestroy() {
  for (int k = 0; k < kMaxLanes; ++k)
    for (int *fd : {&g_lane[k].end[0], &g_lane[k].end[1], &g_lane[k].mine}) {
      CloseRuntimeFd(*fd);
      *fd = -1;
    }
  g_n_ends = 0;
  g_live = false;
}

void HandoverUseLane(int k) { t_lane = k; }

int HandoverNewLane(int k) {
  char err[64];
  if (k != g_n_ends || k >= kMaxLanes || !CreatePair(k, err, sizeof err))
    return -EMFILE;
  LaneEnds &l = g_lane[k];
  int number = -1; // a runtime descriptor: kept where it arrives
  int r = SendFds(MyEnd(), &l.end[1], &number, 1);
  CloseRuntimeFd(l.end[1]);
  l.mine = l.end[0];
  l.end[0] = l.end[1] = -1;
  if (r < 0) {
    CloseRuntimeFd(l.mine);
    l.mine = -1;
    return r;
  }
  __atomic_store_n(&g_n_ends, k + 1, __ATOMIC_RELEASE);
  return 1;
}

const char *HandoverJoinLane(int k) {
  Payload p;
  int fds[kPerMessage];
  if (k != g_n_ends || k >= kMaxLanes)
    return "a new thread's lane is out of order";
  if (const char *why = ReceiveMessage(MyEnd(), &p, fds))
    return why;
  if (p.count != 1 || p.number[0] != -1) {
    for (uint32_t i = 0; i < p.count; ++i)
      RawSyscall(SYS_close, fds[i]);
    return "a new thread's hand-over socket did not arrive";
  }
  g_lane[k].mine = MoveFdHigh(fds[0]);
  __atomic_store_n(&g_n_ends, k + 1, __ATOMIC_RELEASE);
  return nullptr;
}

bool HandoverLive() { return g_live; }
void HandoverSetLive() { g_live = true; }
bool HandoverHoldsAll() { return g_holds_all; }

int HandoverSendTable() {
  static int fds[kPerMessage];
  int sock = g_lane[0].mine;
  int n = 0, sent = 0, failed = 0;
  ForEachProgramFd([&](int fd) {
    if (failed)
      return;
    fds[n++] = fd;
    if (n < kPerMessage)
      return;
    int r = SendFds(sock, fds, fds, n);
    if (r < 0)
      failed = r;
    sent += n, n = 0;
  });
  if (failed)
    return failed;
  int r = n ? SendFds(sock, fds, fds, n) : 0;
  if (r < 0)
    return r;
  g_live = true;
  return sent + n;
}

int HandoverSendNew(const CallView &c, long ret) {
  if (!g_live)
    return 0;
  int fds[kPerMessage];
  int n = CreatedFds(c, ret, fds);
  return n ? SendFds(MyEnd(), fds, fds, n) : 0;
}

bool HandoverCreates(const CallView &c, long ret) {
  int fds[kPerMessage];
  return CreatedFds(c, ret, fds) > 0;
}

int HandoverLanes() { return __atomic_load_n(&g_n_ends, __ATOMIC_ACQUIRE); }

int HandoverSendOne(int fd, int as_number) {
  return SendFds(g_lane[0].mine, &fd, &as_number, 1) < 0 ? -1 : 1;
}

void HandoverForEachProgramFd(void (*f)(int fd)) { ForEachProgramFd(f); }

void HandoverNoteInherited() {
  memset(g_mirror, 0, sizeof g_mirror);
  g_holds_all = false;
  ForEachProgramFd([](int fd) { SetMirror(fd, true); });
}

void HandoverMirrorAll() {
  HandoverNoteInherited();
  g_holds_all = true;
}

void HandoverForgetMirrors() {
  memset(g_mirror, 0, sizeof g_mirror);
  g_holds_all = false;
}

const char *HandoverReceiveTable(uint64_t n) {
  const char *why = HandoverReceive(n);
  g_holds_all = !why;
  return why;
}

const char *HandoverReceive(uint64_t n, bool force) {
  Payload p; // on the stack: the threads of a follower receive at once
  int fds[kPerMessage];
  int sock = MyEnd();
  while (n > 0) {
    if (const char *why = ReceiveMessage(sock, &p, fds))
      return why;
    const char *failed = nullptr;
    for (uint32_t i = 0; i < p.count; ++i) {
      if (failed)
        RawSyscall(SYS_close, fds[i]);
      else
        failed = Install(fds[i], p.number[i], p.cloexec[i], force);
    }
    if (failed)
      return failed;
    n = p.count < n ? n - p.count : 0;
  }
  return nullptr;
}

void HandoverRelease(int fd) {
  if (!Mirrored(fd))
    return;
  SetMirror(fd, false);
  RawSyscall(SYS_close, fd);
}

} // namespace mve
} // namespace mvedsua
