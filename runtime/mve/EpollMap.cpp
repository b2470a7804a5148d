// EpollMap.cpp: epoll_event.data mapped between the leader's version and the
// follower's (EpollMap.h; docs/mve.md, "epoll_event.data").
//
// Only followers hold entries; the leader's only cost is one compare on its
// record path (Shim.cpp: args[4] of epoll_ctl).
#include "EpollMap.h"
#include "../Runtime.h"
#include "Log.h"
#include "Raw.h"
#include "Shim.h"

#include "absl/container/flat_hash_map.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <utility>
#include <vector>

namespace mvedsua {
namespace mve {
namespace {

struct Entry {
  int32_t epfd, fd;
  uint32_t events;  // as registered (EPOLLONESHOT, EPOLLET included)
  uint32_t fired;   // EPOLLONESHOT that fired: disabled until the next MOD
  uint64_t theirs;  // the leader's data
  uint64_t mine;    // this process's data
};

// What goes over in a kCtlEpollMap record: one per entry.
struct WireEntry {
  int32_t epfd, fd;
  uint32_t events, fired;
  uint64_t theirs, mine;
};
static_assert(sizeof(WireEntry) == 32, "wire entry");

uint64_t FdKey(int epfd, int fd) {
  return uint64_t(uint32_t(epfd)) << 32 | uint32_t(fd);
}

struct Map {
  absl::flat_hash_map<uint64_t, Entry> by_fd; // (epfd, fd)
  // (epfd, leader's data) -> fd; -1 when two descriptors of one instance
  // share a leader value but not this process's value (ambiguous).
  absl::flat_hash_map<std::pair<int32_t, uint64_t>, int32_t> by_value;
  // Registrations whose descriptor was closed: (epfd, leader's data) ->
  // this process's data. The kernel keeps a registration while any copy of
  // the open file description lives (the follower's inherited copy until it
  // replays the close, a dup, a child's), so the leader may still get its
  // events, with the data it gave; the follower gets the data it gave.
  // Replaced by a new registration of the same value; cleared past
  // kMaxClosed.
  absl::flat_hash_map<std::pair<int32_t, uint64_t>, uint64_t> closed;
  std::vector<int32_t> epfds; // the epoll instances with entries
  // The epoll instances created since the fork (replayed epoll_create):
  // every registration of theirs was seen, so a leader value with no entry
  // is a divergence. Elsewhere it may be a registration inherited at the
  // fork, which holds the same value in both processes: passed through.
  std::vector<int32_t> strict;
  // MVEDSUA_MVE_EPOLL_MAP=0: the leader's values are passed through as they
  // are (what the follower got before the map; the tests show the gap).
  bool off = false;
};

constexpr size_t kMaxClosed = 65536;

Map *g_map; // allocated on first use (the leader's snapshot, a follower)
// The record being replayed by this thread: the leader's data.
__thread __attribute__((tls_model("initial-exec"))) int64_t g_leader_data;
// The follower's threads (one per lane, Threads.h) replay concurrently.
pthread_mutex_t g_map_lock = PTHREAD_MUTEX_INITIALIZER;
struct MapLock {
  MapLock() { pthread_mutex_lock(&g_map_lock); }
  ~MapLock() { pthread_mutex_unlock(&g_map_lock); }
};

void ForgetLocked() {
  delete g_map;
  g_map = nullptr;
  g_leader_data = 0;
}

Map &M() {
  if (!g_map) {
    g_map = new Map();
    const char *env = getenv("MVEDSUA_MVE_EPOLL_MAP");
    g_map->off = env && strcmp(env, "0") == 0;
  }
  return *g_map;
}

bool Strict(const Map &m, int epfd) {
  for (int32_t x : m.strict)
    if (x == epfd)
      return true;
  return false;
}

void IndexValue(Map &m, const Entry &e) {
  auto key = std::make_pair(e.epfd, e.theirs);
  auto it = m.by_value.find(key);
  if (it == m.by_value.end() || it->second == e.fd) {
    m.by_value[key] = e.fd;
    return;
  }
  if (it->second < 0)
    return; // ambiguous already
  auto other = m.by_fd.find(FdKey(e.epfd, it->second));
  if (other == m.by_fd.end() || other->second.mine == e.mine)
    it->second = e.fd; // the same meaning either way
  else
    it->second = -1;
}

void UnindexValue(Map &m, const Entry &e) {
  auto key = std::make_pair(e.epfd, e.theirs);
  auto it = m.by_value.find(key);
  if (it == m.by_value.end())
    return;
  if (it->second == e.fd) {
    m.by_value.erase(it);
    return;
  }
  if (it->second >= 0)
    return;
  // Ambiguous: what is left decides again (rare: a scan).
  m.by_value.erase(it);
  for (auto &kv : m.by_fd)
    if (kv.second.epfd == e.epfd && kv.second.theirs == e.theirs &&
        kv.second.fd != e.fd)
      IndexValue(m, kv.second);
}

void Put(Map &m, const Entry &e) {
  uint64_t k = FdKey(e.epfd, e.fd);
  auto it = m.by_fd.find(k);
  if (it != m.by_fd.end()) {
    Entry old = it->second;
    m.by_fd.erase(it);
    UnindexValue(m, old);
  }
  m.by_fd[k] = e;
  IndexValue(m, e);
  m.closed.erase(std::make_pair(e.epfd, e.theirs));
  bool known = false;
  for (int32_t x : m.epfds)
    known |= x == e.epfd;
  if (!known)
    m.epfds.push_back(e.epfd);
}

void Drop(Map &m, int epfd, int fd, bool closed = false) {
  auto it = m.by_fd.find(FdKey(epfd, fd));
  if (it == m.by_fd.end())
    return;
  Entry old = it->second;
  m.by_fd.erase(it);
  UnindexValue(m, old);
  if (!closed)
    return;
  if (m.closed.size() >= kMaxClosed)
    m.closed.clear();
  m.closed[std::make_pair(old.epfd, old.theirs)] = old.mine;
}

// A descriptor closed (or replaced by dup2): its registrations go, and all
// of them when it was an epoll instance. Approximate as the kernel is exact
// only by open file description (a dup of the descriptor keeps the
// registration alive); docs/mve.md.
void DropFd(Map &m, int fd) {
  for (size_t i = 0; i < m.strict.size(); ++i)
    if (m.strict[i] == fd)
      m.strict.erase(m.strict.begin() + long(i--));
  for (int32_t epfd : m.epfds)
    Drop(m, epfd, fd, true);
  for (size_t i = 0; i < m.epfds.size(); ++i) {
    if (m.epfds[i] != fd)
      continue;
    std::vector<uint64_t> keys;
    for (auto &kv : m.by_fd)
      if (kv.second.epfd == fd)
        keys.push_back(kv.first);
    for (uint64_t k : keys)
      Drop(m, fd, int(uint32_t(k)));
    for (auto it = m.closed.begin(); it != m.closed.end();)
      if (it->first.first == fd)
        m.closed.erase(it++);
      else
        ++it;
    m.epfds.erase(m.epfds.begin() + long(i));
    break;
  }
}

[[noreturn]] void Unmapped(const CallView &c, int64_t ret, int epfd,
                           uint64_t value, bool ambiguous) {
  DivergenceReport *r = ShimDivergence();
  memset(r, 0, sizeof *r);
  r->kind = kDivEpoll;
  r->leader_nr = r->follower_nr = int32_t(c.nr);
  CompareValues(c, r->leader_args);
  CompareValues(c, r->follower_args);
  r->leader_ret = ret;
  snprintf(r->text, sizeof r->text,
           "divergence at record %llu: %s(%d) returned an event whose data "
           "maps to no value of this version\n"
           "  leader's epoll_event.data 0x%llx on epoll instance %d: %s\n",
           (unsigned long long)ShimSeq(), SyscallName(c.nr), epfd,
           (unsigned long long)value, epfd,
           ambiguous ? "two descriptors registered that value here, with "
                       "different data in this version"
                     : "the instance was created after the fork and none of "
                       "its registrations, live or closed, holds it");
  ShimDiverge(r);
}

void RewriteEvents(const CallView &c, int64_t ret) {
  epoll_event *evs = reinterpret_cast<epoll_event *>(c.a[1]);
  if (ret <= 0 || !evs || !g_map)
    return;
  Map &m = *g_map;
  int epfd = int(c.a[0]);
  for (int64_t i = 0; i < ret; ++i) {
    uint64_t v = evs[i].data.u64;
    auto it = m.by_value.find(std::make_pair(int32_t(epfd), v));
    if (it == m.by_value.end()) {
      auto gone = m.closed.find(std::make_pair(int32_t(epfd), v));
      if (gone != m.closed.end()) {
        evs[i].data.u64 = gone->second;
        continue;
      }
    }
    if (it == m.by_value.end() && !Strict(m, epfd))
      continue; // inherited from before the fork: the same in both
    if (it == m.by_value.end() || it->second < 0)
      Unmapped(c, ret, epfd, v, it != m.by_value.end());
    auto e = m.by_fd.find(FdKey(epfd, it->second));
    if (e == m.by_fd.end())
      Unmapped(c, ret, epfd, v, false); // (the indexes disagree: a bug)
    evs[i].data.u64 = e->second.mine;
    if (e->second.events & EPOLLONESHOT)
      e->second.fired = 1;
  }
}

// On stderr with a raw write: this process may be recording or replaying
// already (Report() writes through the shim).
void RawReport(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void RawReport(const char *fmt, ...) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "mvedsua: ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - size_t(n) - 1, fmt, ap);
  va_end(ap);
  if (n > int(sizeof buf) - 2)
    n = int(sizeof buf) - 2;
  buf[n++] = '\n';
  RawWriteAll(2, buf, uint64_t(n));
}

} // namespace

void EpollTakeLeaderData(RecHead &h) {
  if (h.nr != SYS_epoll_ctl)
    return;
  g_leader_data = h.args[kEpollDataArg];
  h.args[kEpollDataArg] = 0;
}

void EpollReplayed(const CallView &c, int64_t ret) {
  switch (c.nr) {
  case SYS_epoll_ctl: case SYS_epoll_wait: case SYS_epoll_pwait:
  case SYS_epoll_create: case SYS_epoll_create1:
  case SYS_close: case SYS_dup2: case SYS_dup3:
    break;
  default:
    return; // most records: no lock taken
  }
  MapLock lock;
  if (g_map && g_map->off)
    return;
  switch (c.nr) {
  case SYS_epoll_ctl: {
    Map &m = M(); // (reads MVEDSUA_MVE_EPOLL_MAP when made)
    if (ret < 0 || m.off)
      return;
    int op = int(c.a[1]);
    const epoll_event *ev = reinterpret_cast<const epoll_event *>(c.a[3]);
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev)
      Put(m, Entry{int32_t(c.a[0]), int32_t(c.a[2]), ev->events, 0,
                   uint64_t(g_leader_data), ev->data.u64});
    else if (op == EPOLL_CTL_DEL)
      Drop(m, int(c.a[0]), int(c.a[2]));
    return;
  }
  case SYS_epoll_wait:
  case SYS_epoll_pwait:
    return RewriteEvents(c, ret);
  case SYS_epoll_create:
  case SYS_epoll_create1:
    if (ret >= 0 && !M().off) {
      Map &m = M();
      DropFd(m, int(ret)); // (its close was replayed already)
      m.strict.push_back(int32_t(ret));
    }
    return;
  case SYS_close:
    if (g_map && (ret == 0 || ret == -EINTR))
      DropFd(*g_map, int(c.a[0]));
    return;
  case SYS_dup2:
  case SYS_dup3:
    if (g_map && ret >= 0 && c.a[0] != c.a[1])
      DropFd(*g_map, int(c.a[1]));
    return;
  default:
    return;
  }
}

int EpollBecomeLeader(bool send) {
  MapLock lock;
  if (!g_map)
    return 0;
  Map &m = *g_map;
  int moved = 0, gone = 0;
  std::vector<uint64_t> stale;
  for (auto &kv : m.by_fd) {
    Entry &e = kv.second;
    if (e.theirs == e.mine || e.fired)
      continue; // the kernel holds this data already, or nothing to deliver
    epoll_event ev = {};
    ev.events = e.events;
    ev.data.u64 = e.mine;
    long r = RawSyscall(SYS_epoll_ctl, e.epfd, EPOLL_CTL_MOD, e.fd, long(&ev));
    if (r == 0) {
      ++moved;
    } else if (r == -ENOENT || r == -EBADF) {
      ++gone; // closed through a descriptor the map did not follow
      stale.push_back(kv.first);
    } else {
      RawReport("multi-version: epoll_ctl(%d, EPOLL_CTL_MOD, %d) with this "
             "version's data failed: %s", e.epfd, e.fd, strerror(int(-r)));
    }
  }
  for (uint64_t k : stale)
    Drop(m, int(k >> 32), int(uint32_t(k)));
  if (moved || gone)
    RawReport("multi-version: %d epoll registrations re-registered with this "
           "version's data (%zu mapped%s)",
           moved, m.by_fd.size(), gone ? ", some gone already" : "");
  if (send) {
    uint64_t len = (m.by_fd.size() + m.closed.size() + m.strict.size()) *
                   sizeof(WireEntry);
    RecHead h = {kCtlEpollMap, 0, ShimSeq(), {int64_t(m.by_fd.size())}, 0, len, 0};
    uint64_t cursor;
    if (LogBegin(ShimLog(), sizeof h + len, &cursor)) {
      LogPut(ShimLog(), &cursor, &h, sizeof h);
      for (auto &kv : m.by_fd) {
        const Entry &e = kv.second;
        WireEntry w = {e.epfd, e.fd, e.events, e.fired, e.theirs, e.mine};
        LogPut(ShimLog(), &cursor, &w, sizeof w);
      }
      for (auto &kv : m.closed) { // fd -1: closed, still mapped
        WireEntry w = {kv.first.first, -1, 0, 0, kv.first.second, kv.second};
        LogPut(ShimLog(), &cursor, &w, sizeof w);
      }
      for (int32_t epfd : m.strict) { // fd -2: created since the fork
        WireEntry w = {epfd, -2, 0, 0, 0, 0};
        LogPut(ShimLog(), &cursor, &w, sizeof w);
      }
      LogCommit(ShimLog(), sizeof h + len);
    }
  }
  ForgetLocked(); // a leader keeps no map
  return moved;
}

void EpollReceiveMap(const RecHead &h) {
  MapLock lock;
  ForgetLocked();
  Map &m = M();
  uint64_t len = h.in_len;
  for (uint64_t at = 0; at + sizeof(WireEntry) <= len; at += sizeof(WireEntry)) {
    WireEntry w;
    LogRead(ShimLog(), &w, sizeof w);
    // The other way round: the new leader's data is the leader's now.
    if (w.fd == -2)
      m.strict.push_back(w.epfd);
    else if (w.fd < 0)
      m.closed[std::make_pair(w.epfd, w.mine)] = w.theirs;
    else
      Put(m, Entry{w.epfd, w.fd, w.events, w.fired, w.mine, w.theirs});
  }
}

void EpollForget() {
  MapLock lock;
  ForgetLocked();
}

uint64_t EpollMapSize() { return g_map ? g_map->by_fd.size() : 0; }

} // namespace mve
} // namespace mvedsua
