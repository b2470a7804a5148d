// ControlServer.cpp: the control socket of mvedsua-run.
//
// Only the supervisor's own uid (and root) may talk to it: the socket is mode
// 0600 and every peer's SO_PEERCRED uid is checked too, in case the socket
// sits in a directory others can reach it through with a looser mode. A
// client that sends no whole line within 2 seconds, or more than 4096 bytes
// without a newline, gets an error; a malformed request changes nothing.
#include "ControlServer.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr size_t kMaxRequest = 4096;
constexpr uint64_t kClientTimeoutMs = 2000;
constexpr size_t kMaxConnections = 64;
constexpr size_t kMaxDrain = 16 * kMaxRequest;

bool MakeAddress(const char *path, sockaddr_un *addr) {
  *addr = {};
  addr->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr->sun_path)
    return false;
  strcpy(addr->sun_path, path);
  return true;
}

// True when a live supervisor already serves `addr`.
bool IsServed(const sockaddr_un &addr) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool served = fd >= 0 && connect(fd, (const sockaddr *)&addr, sizeof addr) == 0;
  if (fd >= 0)
    close(fd);
  return served;
}

// Removes a socket file left by a supervisor that died; refuses anything else.
bool ClearPath(const char *path, const sockaddr_un &addr, std::string *err) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return true;
  if (!S_ISSOCK(st.st_mode)) {
    *err = std::string("control socket ") + path + " exists and is not a socket";
    return false;
  }
  if (IsServed(addr)) {
    *err = std::string("control socket ") + path +
           " is already served by another process";
    return false;
  }
  unlink(path);
  return true;
}

// "" when the peer may control the service, else the error reply.
std::string CheckPeer(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return std::string("error: cannot identify the peer: ") + strerror(errno) + "\n";
  if (cred.uid == geteuid() || cred.uid == 0)
    return "";
  return "error: permission denied: uid " + std::to_string(cred.uid) +
         " may not control this service (owner uid " +
         std::to_string(geteuid()) + ")\n";
}

} // namespace

uint64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

bool ControlServer::Open(const char *path, Handler handler, std::string *err) {
  sockaddr_un addr;
  if (!MakeAddress(path, &addr)) {
    *err = std::string("control socket path too long: ") + path;
    return false;
  }
  if (!ClearPath(path, addr, err))
    return false;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  mode_t old_mask = umask(0177); // created 0600, never briefly wider
  int bound = fd >= 0 ? bind(fd, (sockaddr *)&addr, sizeof addr) : -1;
  umask(old_mask);
  if (bound != 0 || listen(fd, 16) != 0) {
    *err = std::string("cannot create control socket ") + path + ": " +
           strerror(errno);
    if (fd >= 0)
      close(fd);
    return false;
  }
  listen_fd_ = fd;
  path_ = path;
  handler_ = std::move(handler);
  return true;
}

void ControlServer::Shutdown() {
  while (!conns_.empty())
    CloseConn(conns_.begin()->first);
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
    listen_fd_ = -1;
  }
}

void ControlServer::CloseFdsInChild() {
  for (auto &kv : conns_)
    close(kv.second.fd);
  if (listen_fd_ >= 0)
    close(listen_fd_);
}

void ControlServer::Collect(std::vector<pollfd> *fds,
                            std::vector<int> *ids) const {
  if (listen_fd_ < 0)
    return;
  fds->push_back({listen_fd_, POLLIN, 0});
  ids->push_back(-1);
  for (const auto &kv : conns_) {
    const Conn &c = kv.second;
    short events = c.phase == Conn::kWriting ? POLLOUT
                   : c.read_closed           ? 0 // POLLHUP/POLLERR still come
                                             : POLLIN;
    fds->push_back({c.fd, events, 0});
    ids->push_back(kv.first);
  }
}

uint64_t ControlServer::NextDeadline() const {
  uint64_t next = 0;
  for (const auto &kv : conns_)
    if (kv.second.deadline_ms && (!next || kv.second.deadline_ms < next))
      next = kv.second.deadline_ms;
  return next;
}

void ControlServer::OnEvent(int id, short revents, uint64_t now_ms) {
  if (id < 0)
    return Accept(now_ms);
  auto it = conns_.find(id);
  if (it == conns_.end())
    return;
  Conn &c = it->second;
  if (c.phase == Conn::kWriting)
    return Write(id, c, now_ms);
  if (revents & POLLIN)
    return OnReadable(id, c, now_ms);
  if (revents & (POLLHUP | POLLERR))
    CloseConn(id); // gone: a deferred reply has no one to go to
}

void ControlServer::OnTimer(uint64_t now_ms) {
  std::vector<int> expired;
  for (const auto &kv : conns_)
    if (kv.second.deadline_ms && kv.second.deadline_ms <= now_ms)
      expired.push_back(kv.first);
  for (int id : expired) {
    Conn &c = conns_.at(id);
    if (c.phase == Conn::kReading)
      StartReply(c, "error: incomplete request (no newline)\n", now_ms);
    else
      CloseConn(id);
  }
}

bool ControlServer::Reply(int conn, const std::string &reply) {
  auto it = conns_.find(conn);
  if (it == conns_.end())
    return false;
  StartReply(it->second, reply, MonotonicMs());
  Write(conn, it->second, MonotonicMs());
  return true;
}

void ControlServer::Accept(uint64_t now_ms) {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
      return; // EAGAIN: all taken; others: the client is already gone
    if (conns_.size() >= kMaxConnections) {
      const char busy[] = "error: too many control connections, try again\n";
      (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
      close(fd);
      continue;
    }
    int id = next_id_++;
    Conn &c = conns_[id];
    c.fd = fd;
    c.deadline_ms = now_ms + kClientTimeoutMs;
    std::string denied = CheckPeer(fd);
    if (!denied.empty())
      StartReply(c, denied, now_ms);
  }
}

void ControlServer::OnReadable(int id, Conn &c, uint64_t now_ms) {
  char buf[4096];
  ssize_t n = read(c.fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (c.phase == Conn::kWaiting) { // more input is ignored; EOF is no hang-up
    if (n < 0)
      return CloseConn(id);
    c.read_closed = n == 0;
    return;
  }
  if (c.phase == Conn::kDraining) {
    if (n > 0 && (c.drained += size_t(n)) <= kMaxDrain)
      return;
    return CloseConn(id);
  }
  if (n <= 0)
    return StartReply(c, "error: incomplete request (no newline)\n", now_ms);
  c.in.append(buf, size_t(n));
  size_t nl = c.in.find('\n');
  if (nl == std::string::npos) {
    if (c.in.size() > kMaxRequest)
      StartReply(c, "error: request longer than 4096 bytes\n", now_ms);
    return;
  }
  std::string line = c.in.substr(0, nl);
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  c.in.clear();
  c.phase = Conn::kWaiting;
  c.deadline_ms = 0;
  std::string reply;
  if (handler_(id, line, &reply))
    StartReply(c, reply, now_ms);
}

void ControlServer::StartReply(Conn &c, const std::string &reply,
                               uint64_t now_ms) {
  c.phase = Conn::kWriting;
  c.out = reply;
  c.in.clear();
  c.deadline_ms = now_ms + kClientTimeoutMs; // a client that never reads
}

// Closing with unread input makes the kernel reset the connection, which can
// destroy the reply before the client reads it: after the reply, the
// connection is shut for writing and what the client still sends is read
// (within bounds) until it closes.
void ControlServer::Write(int id, Conn &c, uint64_t now_ms) {
  while (!c.out.empty()) {
    // MSG_NOSIGNAL: a client that hung up must not SIGPIPE the supervisor.
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return; // POLLOUT brings us back
    if (n <= 0)
      return CloseConn(id); // the client went away; nothing to undo
    c.out.erase(0, size_t(n));
  }
  shutdown(c.fd, SHUT_WR);
  c.phase = Conn::kDraining;
  c.deadline_ms = now_ms + kClientTimeoutMs;
}

void ControlServer::CloseConn(int id) {
  auto it = conns_.find(id);
  if (it == conns_.end())
    return;
  close(it->second.fd);
  conns_.erase(it);
}
