// CtlMain.cpp: mvedsua-ctl, the operator's client of mvedsua-run's control
// socket. It sends one request line and prints the reply. Exit status: 0 on
// success; 1 when the supervisor answered with an error, an update failed or
// would be refused, or the supervisor could not be reached; 2 for usage
// errors.
#include "Duration.h"
#include "Rules.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char kUsage[] =
    "usage: mvedsua-ctl --control SOCKET COMMAND\n"
    "\n"
    "Talks to the mvedsua-run supervisor serving SOCKET.\n"
    "\n"
    "Commands:\n"
    "  status [--json]   the running version (path, id), the update stage, the\n"
    "                    last update and the history of updates\n"
    "  update [--timeout DUR] [--retry N] [--rules FILE] [--learn FILE] NEW.so\n"
    "                    multi-version update (the default mode): at its next\n"
    "                    update point the program forks; the child (the\n"
    "                    follower) applies the update and replays the log of the\n"
    "                    old version (the leader), which keeps serving. Waits\n"
    "                    until the follower caught up (\"caught up: ...\", exit 0)\n"
    "                    or was rolled back (\"rolled-back: REASON\": a divergence,\n"
    "                    a crash, a time limit; exit 1). --timeout is the\n"
    "                    follower's time to finish its update and to keep making\n"
    "                    progress; --retry N retries a rollback that may not\n"
    "                    recur (divergence, crash, time limit) up to N times.\n"
    "                    --rules FILE: the expected differences (docs/rules.md),\n"
    "                    checked and compiled first; the follower applies them.\n"
    "                    --learn FILE: the follower notes every difference in\n"
    "                    FILE and goes on (learning the noise, with a follower\n"
    "                    of the same version).\n"
    "                    --promote-after DUR [--finish-after DUR]: unattended:\n"
    "                    promote DUR after the catch-up, finish DUR after the\n"
    "                    promotion; a count instead (5000calls): once the\n"
    "                    follower replayed that many records (the leader's\n"
    "                    calls) in the stage;\n"
    "                    --wait finished: reply when the update\n"
    "                    ended (\"finished: ...\" or \"rolled-back: ...\").\n"
    "  rollback          end the follower of a multi-version update; the old\n"
    "                    version goes on alone\n"
    "  promote           once caught up: the follower (the new version) leads\n"
    "                    and the old version follows it, checking it (stage\n"
    "                    updated-leader); a crash or divergence of the new\n"
    "                    leader hands the service back to the old version\n"
    "  finish            after promote: the old version ends (stage\n"
    "                    single-leader); rollback before finish returns to it\n"
    "  update --inplace [--timeout DUR] NEW.so\n"
    "                    update the running program in place to NEW.so: at its\n"
    "                    next update point it loads NEW.so, moves its state and\n"
    "                    runs NEW.so's main. Waits until the new version reached\n"
    "                    that update point (\"finished: ...\") or the update failed\n"
    "                    (\"failed: REASON\"); exit status 0 only when it finished.\n"
    "                    In-place updates cannot be rolled back once the state\n"
    "                    moved (see docs/runtime.md).\n"
    "  update --check [--inplace] [--timeout DUR] NEW.so\n"
    "                    would the update be accepted? Checks the file, its\n"
    "                    registry, its transformer's predecessor and every changed\n"
    "                    type, in a scratch process, without touching the program\n"
    "                    (\"accepted: ...\" exit 0, \"refused: ...\" exit 1)\n"
    "\n"
    "Options of update may stand before or after NEW.so; a relative NEW.so is\n"
    "taken from the current directory. DUR is a whole number with a unit: 500ms,\n"
    "2s, 1m (at most 60m). --timeout is how long the update may take, from the\n"
    "request to the new version reaching its update point (default 30s); for\n"
    "--check, how long the check may take.\n"
    "\n"
    "  --control SOCKET  the supervisor's control socket (mvedsua-run --control)\n"
    "  --help            print this help\n";

static int UsageError(const std::string &what) {
  fprintf(stderr, "mvedsua-ctl: error: %s (see mvedsua-ctl --help)\n",
          what.c_str());
  return 2;
}

static int Connect(const char *path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    fprintf(stderr, "mvedsua-ctl: error: control socket path too long: %s\n",
            path);
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
    return fd;
  fprintf(stderr, "mvedsua-ctl: error: cannot connect to control socket %s: %s\n",
          path, strerror(errno));
  if (fd >= 0)
    close(fd);
  return -1;
}

static bool WriteAll(int fd, const std::string &s) {
  const char *buf = s.data();
  size_t len = s.size();
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    buf += n;
    len -= size_t(n);
  }
  return true;
}

// The whole reply: the supervisor closes the connection after it. An update
// is answered when it ends, so the wait is bounded by its own time limit
// (plus a margin), not by a fixed one. false on an error or no reply in time.
static bool ReadReply(int fd, uint64_t wait_ms, std::string *reply) {
  char buf[4096];
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, int(wait_ms));
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      errno = ETIMEDOUT;
    if (r <= 0)
      return false;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    if (n == 0)
      return true;
    reply->append(buf, size_t(n));
  }
}

static bool StartsWith(const std::string &s, const char *prefix) {
  return s.compare(0, strlen(prefix), prefix) == 0;
}

// Sends `request` and prints the reply: outcomes on stdout, errors on
// stderr naming the socket. Returns the exit status.
static int Transact(const char *path, const std::string &request,
                    uint64_t wait_ms) {
  int fd = Connect(path);
  if (fd < 0)
    return 1;
  std::string reply;
  bool ok = WriteAll(fd, request) && ReadReply(fd, wait_ms, &reply);
  int saved = errno;
  close(fd);
  if (!ok || reply.empty()) {
    fprintf(stderr, "mvedsua-ctl: error: no reply from control socket %s%s%s\n",
            path, ok ? "" : ": ", ok ? "" : strerror(saved));
    return 1;
  }
  if (StartsWith(reply, "error: ")) {
    fprintf(stderr, "mvedsua-ctl: error: %s: %s", path, reply.c_str() + 7);
    return 1;
  }
  fputs(reply.c_str(), stdout);
  bool failed = StartsWith(reply, "failed: ") || StartsWith(reply, "refused: ") ||
                StartsWith(reply, "rolled-back: ");
  return failed ? 1 : 0;
}

// A rollback is answered once the program reported the follower's end (the
// supervisor gives up after 10 s).
constexpr uint64_t kRollbackWaitMs = 20000;
// Status and errors come at once; a few seconds is plenty.
constexpr uint64_t kStatusWaitMs = 10000;
// Past an update's time limit the supervisor answers at once; allow for a
// loaded machine.
constexpr uint64_t kReplyMarginMs = 30000;

static int Status(const char *control, int argc, char **argv) {
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--json") != 0)
      return UsageError(std::string("status: unknown argument ") + argv[i]);
    json = true;
  }
  return Transact(control, json ? "status --json\n" : "status\n", kStatusWaitMs);
}

struct UpdateArgs {
  bool inplace = false, check = false;
  uint64_t timeout_ms = kDefaultUpdateTimeoutMs;
  std::string retry; // --retry N, passed as given (the supervisor checks it)
  std::string rules; // --rules FILE: compiled here, its object sent
  std::string learn; // --learn FILE: the follower notes differences there
  // The unattended policy, passed as given (the supervisor checks it).
  std::string promote_after, finish_after, wait;
  uint64_t policy_ms = 0; // the policy's own durations, for the wait
  std::string file;
};

// Options before or after the file; returns 0, or the exit status of an error.
static int ParseUpdate(int argc, char **argv, UpdateArgs *u) {
  bool options_ended = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i], err, value;
    if (options_ended || a.empty() || a[0] != '-') {
      if (!u->file.empty())
        return UsageError("update: one version file expected, got '" + u->file +
                          "' and '" + a + "'");
      u->file = a;
    } else if (a == "--") {
      options_ended = true;
    } else if (a == "--inplace") {
      u->inplace = true;
    } else if (a == "--check") {
      u->check = true;
    } else if (a == "--retry" || StartsWith(a, "--retry=")) {
      if (a == "--retry" && i + 1 == argc)
        return UsageError("update: --retry needs a number of retries");
      u->retry = a == "--retry" ? argv[++i] : a.substr(8);
      if (u->retry.empty() ||
          u->retry.find_first_not_of("0123456789") != std::string::npos)
        return UsageError("update: --retry needs a whole number, not '" +
                          u->retry + "'");
    } else if (a == "--learn" || StartsWith(a, "--learn=")) {
      if (a == "--learn" && i + 1 == argc)
        return UsageError("update: --learn needs a file for the differences");
      u->learn = a == "--learn" ? argv[++i] : a.substr(8);
    } else if (a == "--rules" || StartsWith(a, "--rules=")) {
      if (a == "--rules" && i + 1 == argc)
        return UsageError("update: --rules needs a rules file");
      u->rules = a == "--rules" ? argv[++i] : a.substr(8);
    } else if (a == "--promote-after" || a == "--finish-after" ||
               a == "--wait") {
      if (i + 1 == argc)
        return UsageError("update: " + a + " needs a value");
      std::string *slot = a == "--wait" ? &u->wait
                          : a == "--promote-after" ? &u->promote_after
                                                   : &u->finish_after;
      *slot = argv[++i];
      int64_t ms = -1, calls = -1;
      if (a != "--wait" && !ParseStepAfter(*slot, &ms, &calls, &err))
        return UsageError("update: " + a + ": " + err);
      // A step counted in calls comes as fast as the traffic: wait for it
      // as long as the longest duration.
      u->policy_ms += ms >= 0 ? uint64_t(ms) : calls >= 0 ? kMaxDurationMs : 0;
    } else if (a == "--timeout" || StartsWith(a, "--timeout=")) {
      if (a == "--timeout" && i + 1 == argc)
        return UsageError("update: --timeout needs a duration (500ms, 2s, 1m)");
      value = a == "--timeout" ? argv[++i] : a.substr(10);
      if (!ParseDuration(value, &u->timeout_ms, &err))
        return UsageError("update: --timeout: " + err);
    } else {
      return UsageError("update: unknown option " + a);
    }
  }
  if (u->file.empty())
    return UsageError("update: no version file given");
  return 0;
}

// The supervisor runs elsewhere: it gets an absolute path.
static bool Absolute(const std::string &file, std::string *out) {
  if (file[0] == '/') {
    *out = file;
    return true;
  }
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd))
    return false;
  *out = std::string(cwd) + "/" + file;
  return true;
}

// Checks and compiles a rules file (mvedsua-rules check); the object's path
// in `so`. Errors and warnings go to stderr.
static bool CompileRules(const std::string &file, std::string *so) {
  using namespace mvedsua::rules;
  Diagnostics diags;
  CompileResult res;
  CompileOptions opts;
  bool ok = CompileFile(file, opts, res, diags);
  for (const Diagnostic &d : diags.list)
    fprintf(stderr, "%s\n", d.Format().c_str());
  if (!ok)
    fprintf(stderr, "mvedsua-ctl: error: the rules in %s are not usable; no "
                    "update was requested\n", file.c_str());
  else if (res.so_path.find_first_of(" \n") != std::string::npos)
    fprintf(stderr, "mvedsua-ctl: error: the rules cache path '%s' has a "
                    "blank or a newline\n", res.so_path.c_str());
  else
    *so = res.so_path;
  return !so->empty();
}

static int Update(const char *control, int argc, char **argv) {
  UpdateArgs u;
  if (int status = ParseUpdate(argc, argv, &u))
    return status;
  if (!u.retry.empty() && (u.inplace || u.check))
    return UsageError("update: --retry is for multi-version updates");
  if ((!u.rules.empty() || !u.learn.empty()) && u.inplace)
    return UsageError("update: --rules and --learn are for multi-version updates");
  std::string learn;
  if (!u.learn.empty() && (u.learn.find_first_of(" \n") != std::string::npos ||
                           !Absolute(u.learn, &learn)))
    return UsageError("update: cannot use the file name '" + u.learn + "' for --learn");
  std::string path;
  if (u.file.find('\n') != std::string::npos || !Absolute(u.file, &path))
    return UsageError("update: cannot use the version file name '" + u.file + "'");
  // The rules are checked and compiled before anything is asked of the
  // supervisor: a bad rules file never starts an update.
  std::string rules_so;
  if (!u.rules.empty() && !CompileRules(u.rules, &rules_so))
    return 1;
  std::string request = std::string("update ") + (u.check ? "--check " : "") +
                        (u.inplace ? "--inplace " : "") +
                        (u.retry.empty() ? "" : "--retry " + u.retry + " ") +
                        (rules_so.empty() ? "" : "--rules " + rules_so + " ") +
                        (learn.empty() ? "" : "--learn " + learn + " ") +
                        (u.promote_after.empty() ? "" : "--promote-after " + u.promote_after + " ") +
                        (u.finish_after.empty() ? "" : "--finish-after " + u.finish_after + " ") +
                        (u.wait.empty() ? "" : "--wait " + u.wait + " ") +
                        "--timeout " + FormatDuration(u.timeout_ms) + " -- " +
                        path + "\n";
  // A multi-version update's wait: the follower's update, its catch-up
  // (the supervisor allows twice the limit), and each retry.
  uint64_t wait = u.timeout_ms + kReplyMarginMs;
  if (!u.inplace && !u.check)
    wait = (2 * u.timeout_ms + kReplyMarginMs) *
               (1 + (u.retry.empty() ? 0 : std::stoull(u.retry))) +
           u.policy_ms + 2 * kRollbackWaitMs;
  return Transact(control, request, wait);
}

int main(int argc, char **argv) {
  const char *control = nullptr;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(kUsage, stdout);
      return 0;
    }
    if (strcmp(argv[i], "--control") == 0 && i + 1 < argc)
      control = argv[++i];
    else if (strncmp(argv[i], "--control=", 10) == 0)
      control = argv[i] + 10;
    else
      return UsageError(std::string("unknown option or missing value: ") + argv[i]);
  }
  if (!control || !*control)
    return UsageError("no control socket given: use --control SOCKET");
  if (i == argc)
    return UsageError("no command given");
  if (strcmp(argv[i], "status") == 0)
    return Status(control, argc - i - 1, argv + i + 1);
  if (strcmp(argv[i], "update") == 0)
    return Update(control, argc - i - 1, argv + i + 1);
  if (strcmp(argv[i], "rollback") == 0 || strcmp(argv[i], "promote") == 0 ||
      strcmp(argv[i], "finish") == 0) {
    if (i + 1 < argc)
      return UsageError(std::string(argv[i]) + ": unexpected argument " +
                        argv[i + 1]);
    return Transact(control, std::string(argv[i]) + "\n", kRollbackWaitMs);
  }
  return UsageError(std::string("unknown command ") + argv[i]);
}
