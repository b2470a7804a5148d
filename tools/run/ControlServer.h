// ControlServer.h: mvedsua-run's control socket (--control PATH).
//
// Protocol: a client connects and sends one request line (Request.h); the
// supervisor sends one reply and closes the connection. A reply may come at
// once (status, errors) or later (an update answers when its outcome is
// known): every connection is non-blocking and served from the supervisor's
// poll loop, so any number of clients can wait or be served meanwhile. Error
// replies are one line starting with "error: ".
#ifndef MVEDSUA_TOOLS_RUN_CONTROL_SERVER_H
#define MVEDSUA_TOOLS_RUN_CONTROL_SERVER_H

#include <functional>
#include <map>
#include <poll.h>
#include <stdint.h>
#include <string>
#include <vector>

class ControlServer {
public:
  // Answers a request line: true with the reply in *reply to send it now,
  // false when the reply will come through Reply(conn, ...).
  using Handler =
      std::function<bool(int conn, const std::string &line, std::string *reply)>;

  // Creates the listening socket at `path`, mode 0600, replacing a stale
  // socket nobody serves. false with a message naming `path` in *err.
  bool Open(const char *path, Handler handler, std::string *err);
  // Closes everything and removes the socket file.
  void Shutdown();
  bool IsOpen() const { return listen_fd_ >= 0; }
  // For a forked child: close the fds, touch nothing else.
  void CloseFdsInChild();

  // The poll loop's part: fds to watch (ids[i] = -1 for the listening
  // socket), their events, and the earliest deadline (ms, monotonic; 0: none).
  void Collect(std::vector<pollfd> *fds, std::vector<int> *ids) const;
  void OnEvent(int id, short revents, uint64_t now_ms);
  void OnTimer(uint64_t now_ms);
  uint64_t NextDeadline() const;

  // The deferred reply of connection `conn`; false if it went away.
  bool Reply(int conn, const std::string &reply);
  bool Connected(int conn) const { return conns_.count(conn) != 0; }

private:
  struct Conn {
    int fd;
    enum Phase { kReading, kWaiting, kWriting, kDraining } phase = kReading;
    std::string in, out;
    uint64_t deadline_ms = 0; // kReading, kDraining
    bool read_closed = false; // the client shut its side (it may still read)
    size_t drained = 0;       // bytes read and dropped after the reply
  };
  void Accept(uint64_t now_ms);
  void OnReadable(int id, Conn &c, uint64_t now_ms);
  void Write(int id, Conn &c, uint64_t now_ms);
  void StartReply(Conn &c, const std::string &reply, uint64_t now_ms);
  void CloseConn(int id);

  int listen_fd_ = -1;
  std::string path_;
  Handler handler_;
  std::map<int, Conn> conns_;
  int next_id_ = 1;
};

uint64_t MonotonicMs();

#endif
