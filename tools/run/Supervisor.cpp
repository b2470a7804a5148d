// Supervisor.cpp: mvedsua-run's supervisor process.
//
// Its pid is the service's for its whole life (what a service manager or a
// pid file tracks); the program runs in a child. The supervisor owns the
// control socket, learns which version runs and how updates end over a
// socketpair with the child, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/
// SIGUSR2 to it, and when it ends exits with its status or dies of the same
// signal. It is also the parent of the program's multi-version followers
// (cloned with CLONE_PARENT) and reaps them. The child is started with PR_SET_PDEATHSIG = SIGTERM: if the
// supervisor dies, so does the program, and nothing runs without its
// supervisor. Everything happens in one poll loop: signals (signalfd), the
// channel, control connections, scratch processes of update checks, and the
// time limits of all of them.
#include "Supervisor.h"
#include "CheckRun.h"
#include "ControlServer.h"
#include "Request.h"
#include "ServiceState.h"
#include "StatusFormat.h"
#include "ToolApi.h"
#include "UpdateDriver.h"
#include "VersionFile.h"

#include <errno.h>
#include <fcntl.h>
#include <list>
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
// While a check's scratch process is reaped after closing its pipe.
constexpr uint64_t kReapPollMs = 5;

struct Supervisor {
  explicit Supervisor(const RunOptions &o) : opts(o), updates(state, control) {}
  const RunOptions &opts;
  ServiceState state;
  ControlServer control;
  UpdateDriver updates;
  std::list<CheckRun> checks;
  int channel_fd = -1; // our end of the socketpair; -1 once the child closed it
  int signal_fd = -1;
  std::string channel_buf;
  sigset_t old_mask;
  // A leader that died while its follower was to take over: how, for the
  // program's end if the follower ends without taking over (0: none), and
  // until when the follower may take to say it leads (it replays what is
  // left of the log first; one still updating, or hung, never will).
  pid_t replaced = 0;
  int replaced_status = 0;
  uint64_t replaced_deadline_ms = 0;
  // A signal that ends the service was passed on (which): a leader that
  // dies then, however, is the program's end, not a takeover, and a process
  // that comes to lead meanwhile (one that took over by itself) gets it too.
  bool ending = false;
  int ending_signal = 0;
};
// The follower's own bounds: 3 s for the supervisor's word, then the other
// lanes' replay within the update's time limit (30 s by default); a margin.
constexpr uint64_t kTakeOverMarginMs = 35000;

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
  s.signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  return s.signal_fd >= 0;
}

// In a forked child: nothing of the supervisor's fds survives.
void CloseSupervisorFds(Supervisor &s) {
  close(s.signal_fd);
  if (s.channel_fd >= 0)
    close(s.channel_fd);
  s.control.CloseFdsInChild();
  for (CheckRun &c : s.checks)
    if (c.fd >= 0)
      close(c.fd);
}

// In the child: nothing of the supervisor's survives but the channel end.
[[noreturn]] void StartChild(Supervisor &s, int child_end, pid_t supervisor) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != supervisor) // it died before prctl took effect
    raise(SIGTERM);
  CloseSupervisorFds(s);
  sigprocmask(SIG_SETMASK, &s.old_mask, nullptr);
  RunProgram(s.opts, child_end);
}

void OnProgramLine(Supervisor &s, const std::string &line) {
  pid_t leader = s.state.leader;
  if (line.compare(0, 7, "leader ") == 0)
    s.replaced = 0, s.replaced_deadline_ms = 0; // it took over
  if (ParseHello(line, &s.state) || s.updates.OnProgramLine(line)) {
    if (s.ending_signal && s.state.leader != leader)
      kill(s.state.leader, s.ending_signal);
    return;
  }
  fprintf(stderr, "mvedsua-run: warning: unexpected message from the program "
                  "ignored\n");
}

// Reads everything the channel holds (it is non-blocking): one read of
// 4096 bytes could stop inside the line that hands the lead over, and the
// old leader's end, read next, would be taken for the program's.
void OnChannel(Supervisor &s) {
  char buf[4096];
  while (s.channel_fd >= 0) {
    ssize_t n = read(s.channel_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      close(s.channel_fd); // the program is exiting or exec'd
      s.channel_fd = -1;
      s.updates.SetChannel(-1);
      return;
    }
    s.channel_buf.append(buf, size_t(n));
    size_t nl;
    while ((nl = s.channel_buf.find('\n')) != std::string::npos) {
      std::string line = s.channel_buf.substr(0, nl);
      s.channel_buf.erase(0, nl + 1);
      OnProgramLine(s, line);
    }
  }
}

// Ends the supervisor the way the program ended.
[[noreturn]] void Finish(Supervisor &s, int status) {
  s.updates.OnProgramEnded(status);
  for (CheckRun &c : s.checks)
    AbortCheck(&c);
  s.control.Shutdown();
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

// Every child is reaped here: the program (its end is ours), check
// processes (their status is kept for their own code) and the program's
// multi-version followers, which the runtime clones as our children
// (CLONE_PARENT) so that the program's waitpid(-1) cannot take them. A
// follower is reaped silently: the leader sees it end on a pidfd and has its
// status from the shared area (docs/mve.md).
// A leader that crashed while a follower holding all its descriptors exists
// is replaced by that follower (the runtime takes over by itself and says so
// with "leader PID"); any other end of the leader is the program's end. So
// is one killed with SIGKILL (the OOM killer; never sent from here), which
// its runtime cannot see: the follower, which finds its leader gone, learns
// it from the line "leader-killed" on the program's channel (it holds the
// program's end too). A follower that cannot take over (the descriptors
// were not all handed over yet) ends: the program then ends as its leader
// did.
bool FollowerTakesOver(Supervisor &s, int status) {
  if (!s.state.follower || !WIFSIGNALED(status) || s.ending ||
      kill(s.state.follower, 0) != 0)
    return false;
  bool killed = WTERMSIG(status) == SIGKILL;
  if (killed && s.channel_fd >= 0) {
    static const char line[] = "leader-killed\n";
    if (write(s.channel_fd, line, sizeof line - 1) != ssize_t(sizeof line - 1))
      return false;
  }
  for (int sig : {MVEDSUA_FATAL_SIGNALS})
    killed = killed || WTERMSIG(status) == sig;
  return killed;
}

void ReapChild(Supervisor &s) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == s.state.leader)
      OnChannel(s); // "leader PID", written before this end, read first
    if (pid == s.state.leader && FollowerTakesOver(s, status)) {
      fprintf(stderr, "mvedsua-run: the leader (pid %d) died of signal %d; "
                      "follower %d takes over if it holds its descriptors\n",
              pid, WTERMSIG(status), s.state.follower);
      s.replaced = s.state.follower;
      s.replaced_status = status;
      s.replaced_deadline_ms =
          MonotonicMs() + s.updates.MveTimeoutMs() + kTakeOverMarginMs;
      s.state.leader = s.state.follower;
      s.state.follower = 0;
      continue;
    }
    if (pid == s.state.leader && pid == s.replaced) // it did not take over
      Finish(s, s.replaced_status);
    if (pid == s.state.leader) {
      if (s.state.follower)
        kill(s.state.follower, SIGKILL);
      Finish(s, status);
    }
    for (CheckRun &c : s.checks)
      if (c.pid == pid && !c.reaped)
        c.reaped = true, c.status = status;
  }
}

// Signals the terminal sends (si_code SI_KERNEL) reach the program directly,
// as it shares our process group; forwarding those would deliver them twice.
void OnSignal(Supervisor &s) {
  signalfd_siginfo info;
  while (read(s.signal_fd, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGCHLD)
      ReapChild(s);
    else if (info.ssi_code != SI_KERNEL) {
      int sig = int(info.ssi_signo);
      if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
        s.ending = true, s.ending_signal = sig;
      kill(s.state.leader, sig);
    }
  }
}


// `update --check`: the verdict comes from a scratch process.
bool StartCheckRequest(Supervisor &s, int conn, const Request &req,
                       std::string *reply) {
  std::string err = s.updates.CheckUpdatable();
  std::string path = err.empty() ? CheckVersionFile(req.path, &err) : "";
  CheckRun run;
  run.conn = conn;
  run.from = s.state.version_path;
  run.to = path;
  run.timeout_ms = req.timeout_ms;
  run.deadline_ms = MonotonicMs() + req.timeout_ms;
  if (err.empty() && StartCheck(&run, [&s] { CloseSupervisorFds(s); }, &err)) {
    s.checks.push_back(run);
    return false;
  }
  *reply = "error: " + err + "\n";
  return true;
}

bool OnRequest(Supervisor &s, int conn, const std::string &line,
               std::string *reply) {
  Request req;
  std::string err;
  if (!ParseRequest(line, &req, &err)) {
    *reply = "error: " + err + "\n";
    return true;
  }
  if (req.kind == Request::kUpdate) {
    if (s.updates.Start(conn, req, reply))
      return true; // refused: nothing changes
    // The program outlived the ending signal it was given (it handles it
    // and goes on) and is being updated: its leader's death is a takeover
    // again, and a process that comes to lead no longer gets that signal.
    s.ending = false, s.ending_signal = 0;
    return false;
  }
  if (req.kind == Request::kCheck)
    return StartCheckRequest(s, conn, req, reply);
  if (req.kind == Request::kRollback)
    return s.updates.Rollback(conn, reply);
  if (req.kind == Request::kPromote)
    return s.updates.Promote(conn, reply);
  if (req.kind == Request::kFinish)
    return s.updates.Finish(conn, reply);
  *reply = req.json ? StatusJson(s.state) : StatusText(s.state);
  return true;
}

// Runs after poll: checks whose pipe closed are reaped and answered, those
// out of time killed.
void ServiceChecks(Supervisor &s, uint64_t now_ms) {
  for (auto it = s.checks.begin(); it != s.checks.end();) {
    std::string reply;
    bool done = false;
    if (it->eof)
      done = FinishCheck(&*it, &reply);
    if (!done && now_ms >= it->deadline_ms)
      reply = AbortCheck(&*it), done = true;
    if (!done) {
      ++it;
      continue;
    }
    s.control.Reply(it->conn, reply);
    it = s.checks.erase(it);
  }
}

int PollTimeout(const Supervisor &s, uint64_t now_ms) {
  uint64_t next = 0;
  for (uint64_t d : {s.control.NextDeadline(), s.updates.NextDeadline(),
                     s.replaced_deadline_ms})
    if (d && (!next || d < next))
      next = d;
  for (const CheckRun &c : s.checks) {
    uint64_t d = c.eof ? now_ms + kReapPollMs : c.deadline_ms;
    if (!next || d < next)
      next = d;
  }
  if (!next)
    return -1;
  return next <= now_ms ? 0 : int(next - now_ms);
}

void PollOnce(Supervisor &s) {
  std::vector<pollfd> fds = {{s.signal_fd, POLLIN, 0}, {s.channel_fd, POLLIN, 0}};
  std::vector<int> conn_ids;
  s.control.Collect(&fds, &conn_ids);
  size_t first_check = fds.size();
  for (const CheckRun &c : s.checks)
    fds.push_back({c.fd, POLLIN, 0});
  if (poll(fds.data(), fds.size(), PollTimeout(s, MonotonicMs())) < 0) {
    if (errno == EINTR)
      return;
    perror("mvedsua-run: error: poll");
    s.ending = true;
    kill(s.state.leader, SIGTERM);
    return;
  }
  // The channel first: a process that hands the lead over says so ("leader
  // PID") before it ends, and its end must not read as the program's.
  if (fds[1].revents)
    OnChannel(s);
  if (fds[0].revents)
    OnSignal(s);
  uint64_t now = MonotonicMs();
  for (size_t i = 0; i < conn_ids.size(); ++i)
    if (fds[2 + i].revents)
      s.control.OnEvent(conn_ids[i], fds[2 + i].revents, now);
  size_t i = first_check;
  for (CheckRun &c : s.checks)
    if (i < fds.size() && fds[i++].revents && !c.eof)
      ReadCheck(&c);
}

[[noreturn]] void Loop(Supervisor &s) {
  for (;;) {
    PollOnce(s);
    uint64_t now = MonotonicMs();
    s.control.OnTimer(now);
    s.updates.OnTimer(now);
    ServiceChecks(s, now);
    if (s.replaced && s.replaced_deadline_ms && now >= s.replaced_deadline_ms) {
      fprintf(stderr, "mvedsua-run: follower %d did not take over within "
                      "%llu ms; the program ends as its leader did\n",
              s.replaced,
              (unsigned long long)(s.updates.MveTimeoutMs() + kTakeOverMarginMs));
      kill(s.replaced, SIGKILL); // reaped: Finish with replaced_status
      s.replaced_deadline_ms = 0;
    }
  }
}

} // namespace

int Supervise(const RunOptions &opts) {
  Supervisor s(opts);
  std::string err;
  auto handler = [&s](int conn, const std::string &line, std::string *reply) {
    return OnRequest(s, conn, line, reply);
  };
  if (opts.control && !s.control.Open(opts.control, handler, &err))
    return Fail(err);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 ||
      !BlockSignals(s))
    return Fail(std::string("cannot set up supervision: ") + strerror(errno));
  s.channel_fd = pair[0];
  // Requests are written without blocking: a program that stopped reading
  // must not stop the supervisor.
  fcntl(s.channel_fd, F_SETFL, O_NONBLOCK);
  s.updates.SetChannel(s.channel_fd);
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
