// CheckRun.cpp: the scratch process of `update --check`.
#include "CheckRun.h"
#include "Duration.h"
#include "StatusFormat.h"
#include "ToolApi.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr size_t kMaxOutput = 64 * 1024;
const char kVerdict[] = "\nmvedsua-check-verdict ";

[[noreturn]] void RunChild(const CheckRun &run, int out) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the supervisor
  int null = open("/dev/null", O_RDONLY);
  dup2(null, 0);
  dup2(out, 1);
  dup2(out, 2);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  static char msg[8192];
  int r = mvedsua_rt_check_update(run.from.c_str(), run.to.c_str(), msg,
                                  sizeof msg);
  fflush(stdout); // a constructor's buffered output goes before the verdict
  printf("%s%s %s\n", kVerdict, r == 0 ? "accepted" : r == 1 ? "refused" : "error",
         msg);
  fflush(stdout);
  _exit(0);
}

// The runtime's own messages (warnings of the planner) are worth showing;
// other output of the versions' constructors is not the operator's concern.
std::string Notes(const std::string &output) {
  std::string notes;
  size_t at = 0;
  while (at < output.size()) {
    size_t nl = output.find('\n', at);
    std::string line = output.substr(at, nl == std::string::npos ? nl : nl - at);
    if (line.compare(0, 9, "mvedsua: ") == 0)
      notes += "note: " + line.substr(9) + "\n";
    at = nl == std::string::npos ? output.size() : nl + 1;
  }
  return notes;
}

std::string Died(const CheckRun &run, int status) {
  std::string how = WIFSIGNALED(status)
                        ? "died of signal " + std::to_string(WTERMSIG(status))
                        : "exited with status " +
                              std::to_string(WEXITSTATUS(status));
  return "error: the check's scratch process " + how +
         " before its verdict (a constructor of " + run.from + " or " + run.to +
         " may have ended it)\n";
}

} // namespace

bool StartCheck(CheckRun *run, const std::function<void()> &in_child,
                std::string *err) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    *err = std::string("cannot start the check: pipe: ") + strerror(errno);
    return false;
  }
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    *err = std::string("cannot start the check: fork: ") + strerror(errno);
    close(pipefd[0]);
    close(pipefd[1]);
    return false;
  }
  if (pid == 0) {
    close(pipefd[0]);
    in_child();
    RunChild(*run, pipefd[1]);
  }
  close(pipefd[1]);
  fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  run->pid = pid;
  run->fd = pipefd[0];
  return true;
}

bool ReadCheck(CheckRun *run) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(run->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false; // EAGAIN: more later
    if (n == 0)
      break;
    if (run->output.size() < kMaxOutput)
      run->output.append(buf, size_t(n));
  }
  close(run->fd);
  run->fd = -1;
  run->eof = true;
  return true;
}

bool FinishCheck(CheckRun *run, std::string *reply) {
  int status = run->status;
  if (!run->reaped && waitpid(run->pid, &status, WNOHANG) != run->pid)
    return false;
  run->pid = -1;
  size_t at = run->output.rfind(kVerdict);
  if (at == std::string::npos) {
    *reply = Died(*run, status);
    return true;
  }
  std::string verdict = run->output.substr(at + strlen(kVerdict));
  if (!verdict.empty() && verdict.back() == '\n')
    verdict.pop_back();
  std::string notes = Notes(run->output.substr(0, at));
  std::string what = ShortName(run->from) + " -> " + ShortName(run->to);
  if (verdict.compare(0, 9, "accepted ") == 0)
    *reply = "accepted: " + what + " in-place: " +
             verdict.substr(9) + "\n" + notes;
  else if (verdict.compare(0, 8, "refused ") == 0)
    *reply = "refused: " + what + " in-place: " +
             verdict.substr(8) + "\n" + notes;
  else
    *reply = "error: the check cannot load the running version: " +
             verdict.substr(verdict.find(' ') + 1) + "\n" + notes;
  return true;
}

std::string AbortCheck(CheckRun *run) {
  if (run->pid > 0 && !run->reaped) {
    kill(run->pid, SIGKILL);
    waitpid(run->pid, nullptr, 0);
    run->pid = -1;
  }
  if (run->fd >= 0)
    close(run->fd);
  run->fd = -1;
  return "error: the check of " + run->to + " did not finish within " +
         FormatDuration(run->timeout_ms) + " (its scratch process was killed)\n";
}
