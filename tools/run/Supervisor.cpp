// Supervisor.cpp: mvedsua-run's supervisor process.
//
// Its pid is the service's for its whole life (what a service manager or a
// pid file tracks); the program runs in a child. The supervisor owns the
// control socket, learns which version runs over a socketpair with the child,
// forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to it, and when it
// ends exits with its status or dies of the same signal. The child is
// started with PR_SET_PDEATHSIG = SIGTERM: if the supervisor dies, so does the
// program, and nothing runs without its supervisor.
#include "Supervisor.h"
#include "ControlServer.h"
#include "ServiceState.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

struct Supervisor {
  const RunOptions &opts;
  ServiceState state;
  int listen_fd = -1;
  int channel_fd = -1; // our end of the socketpair; -1 once the child closed it
  int signal_fd = -1;
  std::string channel_buf;
  sigset_t old_mask;
};

int Fail(const std::string &message) {
  fprintf(stderr, "mvedsua-run: error: %s\n", message.c_str());
  return 1;
}

// The signals the supervisor handles arrive through signal_fd, in its loop,
// never in a handler.
bool BlockSignals(Supervisor &s) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int sig : kForwarded)
    sigaddset(&set, sig);
  if (sigprocmask(SIG_BLOCK, &set, &s.old_mask) != 0)
    return false;
  s.signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
  return s.signal_fd >= 0;
}

// In the child: nothing of the supervisor's survives but the channel end.
[[noreturn]] void StartChild(Supervisor &s, int child_end, pid_t supervisor) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != supervisor) // it died before prctl took effect
    raise(SIGTERM);
  close(s.signal_fd);
  close(s.channel_fd);
  if (s.listen_fd >= 0)
    close(s.listen_fd);
  sigprocmask(SIG_SETMASK, &s.old_mask, nullptr);
  RunProgram(s.opts, child_end);
}

void RemoveControlSocket(Supervisor &s) {
  if (s.listen_fd >= 0) {
    close(s.listen_fd);
    unlink(s.opts.control);
    s.listen_fd = -1;
  }
}

// Ends the supervisor the way the program ended.
[[noreturn]] void Finish(Supervisor &s, int status) {
  RemoveControlSocket(s);
  fflush(nullptr);
  if (WIFEXITED(status))
    _exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  // The program already dumped its core if it was to; don't add ours.
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  _exit(128 + sig); // a signal whose default is not to terminate
}

void ReapChild(Supervisor &s) {
  int status;
  pid_t pid = waitpid(s.state.leader, &status, WNOHANG);
  if (pid == s.state.leader)
    Finish(s, status);
}

// Signals the terminal sends (si_code SI_KERNEL) reach the program directly,
// as it shares our process group; forwarding those would deliver them twice.
void OnSignal(Supervisor &s) {
  signalfd_siginfo info;
  while (read(s.signal_fd, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGCHLD)
      ReapChild(s);
    else if (info.ssi_code != SI_KERNEL)
      kill(s.state.leader, int(info.ssi_signo));
  }
}

void OnChannel(Supervisor &s) {
  char buf[4096];
  ssize_t n = read(s.channel_fd, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && errno == EINTR)
      return;
    close(s.channel_fd); // the program is exiting or exec'd
    s.channel_fd = -1;
    return;
  }
  s.channel_buf.append(buf, size_t(n));
  size_t nl;
  while ((nl = s.channel_buf.find('\n')) != std::string::npos) {
    std::string line = s.channel_buf.substr(0, nl);
    s.channel_buf.erase(0, nl + 1);
    if (!ParseHello(line, &s.state))
      fprintf(stderr, "mvedsua-run: warning: unexpected message from the "
                      "program ignored\n");
  }
}

[[noreturn]] void Loop(Supervisor &s) {
  for (;;) {
    pollfd fds[3] = {{s.signal_fd, POLLIN, 0},
                     {s.channel_fd, POLLIN, 0},
                     {s.listen_fd, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0 && errno != EINTR) {
      perror("mvedsua-run: error: poll");
      kill(s.state.leader, SIGTERM);
    }
    if (fds[0].revents)
      OnSignal(s);
    if (fds[1].revents)
      OnChannel(s);
    if (fds[2].revents)
      ServeControlClient(s.listen_fd, s.state);
  }
}

} // namespace

int Supervise(const RunOptions &opts) {
  Supervisor s{opts, {}, -1, -1, -1, {}, {}};
  std::string err;
  if (opts.control && (s.listen_fd = OpenControlSocket(opts.control, &err)) < 0)
    return Fail(err);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 ||
      !BlockSignals(s))
    return Fail(std::string("cannot set up supervision: ") + strerror(errno));
  s.channel_fd = pair[0];
  s.state.supervisor = getpid();
  fflush(nullptr); // nothing buffered may be written twice
  pid_t pid = fork();
  if (pid < 0)
    return Fail(std::string("cannot start ") + opts.app + ": fork: " +
                strerror(errno));
  if (pid == 0)
    StartChild(s, pair[1], s.state.supervisor);
  close(pair[1]);
  s.state.leader = pid;
  Loop(s);
}
