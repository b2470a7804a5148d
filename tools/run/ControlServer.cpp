// ControlServer.cpp: the control socket of mvedsua-run.
//
// Protocol: a client connects, sends one request line, reads the reply until
// the supervisor closes the connection. An error reply is one line starting
// with "error: ". Requests that cannot be parsed get an error and change
// nothing. Only the supervisor's own uid (and root) may talk to it: the socket
// is mode 0600 and every peer's SO_PEERCRED uid is checked too, in case the
// socket sits in a directory others can reach it through with a looser mode.
#include "ControlServer.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

constexpr size_t kMaxRequest = 4096;
constexpr int kClientTimeoutSeconds = 2;

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

std::string Errno(const char *what, const char *path) {
  return std::string(what) + " " + path + ": " + strerror(errno);
}

} // namespace

int OpenControlSocket(const char *path, std::string *err) {
  sockaddr_un addr;
  if (!MakeAddress(path, &addr)) {
    *err = std::string("control socket path too long: ") + path;
    return -1;
  }
  if (!ClearPath(path, addr, err))
    return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  mode_t old_mask = umask(0177); // created 0600, never briefly wider
  int bound = fd >= 0 ? bind(fd, (sockaddr *)&addr, sizeof addr) : -1;
  umask(old_mask);
  if (bound != 0 || listen(fd, 16) != 0) {
    *err = Errno("cannot create control socket", path);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

namespace {

// Printable form of a request for an error message.
std::string Sanitize(const std::string &s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64))
    out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return s.size() > 64 ? out + "..." : out;
}

std::string JsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string StatusJson(const ServiceState &st) {
  std::string version = "null";
  if (st.announced)
    version = "{\"path\":" + JsonString(st.version_path) + ",\"id\":" +
              (st.version_id.empty() ? "null" : JsonString(st.version_id)) + "}";
  return std::string("{\"stage\":\"") + st.Stage() + "\",\"version\":" + version +
         ",\"leader_pid\":" + std::to_string(st.leader) +
         ",\"follower_pid\":null,\"last_update\":null,\"supervisor_pid\":" +
         std::to_string(st.supervisor) + "}\n";
}

std::string StatusText(const ServiceState &st) {
  std::string version = "(starting)";
  if (st.announced)
    version = st.version_id.empty()
                  ? st.version_path + " (no registry: cannot be updated)"
                  : st.version_path + " id " + st.version_id;
  return std::string("stage: ") + st.Stage() + "\nversion: " + version +
         "\nleader_pid: " + std::to_string(st.leader) +
         "\nfollower_pid: none\nlast_update: none\nsupervisor_pid: " +
         std::to_string(st.supervisor) + "\n";
}

} // namespace

std::string AnswerRequest(const std::string &request, const ServiceState &st) {
  if (request == "status")
    return StatusText(st);
  if (request == "status --json")
    return StatusJson(st);
  if (request.empty())
    return "error: empty request (known: status [--json])\n";
  return "error: unknown request '" + Sanitize(request) +
         "' (known: status [--json])\n";
}

namespace {

// Reads one request line; false with an error reply in *err otherwise.
bool ReadRequest(int fd, std::string *line, std::string *err) {
  char buf[kMaxRequest + 1];
  size_t len = 0;
  while (len < sizeof buf) {
    ssize_t n = read(fd, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += size_t(n);
    if (memchr(buf, '\n', len))
      break;
  }
  const char *nl = static_cast<const char *>(memchr(buf, '\n', len));
  if (!nl) {
    *err = len > kMaxRequest ? "error: request longer than 4096 bytes\n"
                             : "error: incomplete request (no newline)\n";
    return false;
  }
  line->assign(buf, size_t(nl - buf));
  if (!line->empty() && line->back() == '\r')
    line->pop_back();
  return true;
}

bool PeerAllowed(int fd, std::string *err) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *err = std::string("error: cannot identify the peer: ") + strerror(errno) + "\n";
    return false;
  }
  if (cred.uid == geteuid() || cred.uid == 0)
    return true;
  *err = "error: permission denied: uid " + std::to_string(cred.uid) +
         " may not control this service (owner uid " +
         std::to_string(geteuid()) + ")\n";
  return false;
}

void WriteReply(int fd, const std::string &reply) {
  const char *p = reply.data();
  size_t left = reply.size();
  while (left > 0) {
    // MSG_NOSIGNAL: a client that hung up must not SIGPIPE the supervisor.
    ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; // the client went away; nothing to undo
    p += n;
    left -= size_t(n);
  }
}

// Closing with unread input makes the kernel reset the connection, which can
// destroy the reply before the client reads it: read what the client still
// sends (within bounds) first.
void DrainAndClose(int fd) {
  shutdown(fd, SHUT_WR);
  char buf[4096];
  for (size_t total = 0; total < 16 * kMaxRequest;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    total += size_t(n);
  }
  close(fd);
}

} // namespace

void ServeControlClient(int listen_fd, const ServiceState &st) {
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  // A client that stalls must not stall the supervisor for long.
  timeval tv = {kClientTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string request, reply;
  if (PeerAllowed(fd, &reply) && ReadRequest(fd, &request, &reply))
    reply = AnswerRequest(request, st);
  WriteReply(fd, reply);
  DrainAndClose(fd);
}
