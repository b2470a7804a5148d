// CheckRun.h: `update --check`, run in a scratch child of the supervisor.
//
// The child loads the running version's file and the new one (their
// constructors run there, never in the service) and plans the state transfer
// read-only (mvedsua_rt_check_update); it writes its verdict on a pipe the
// supervisor's poll loop reads, so the supervisor keeps serving meanwhile.
#ifndef MVEDSUA_TOOLS_RUN_CHECK_RUN_H
#define MVEDSUA_TOOLS_RUN_CHECK_RUN_H

#include <functional>
#include <stdint.h>
#include <string>
#include <sys/types.h>

struct CheckRun {
  pid_t pid = -1;
  int fd = -1;              // the child's stdout and stderr
  int conn = -1;            // the control connection waiting for the verdict
  uint64_t deadline_ms = 0; // monotonic
  uint64_t timeout_ms = 0;
  std::string from, to;     // version files
  std::string output;       // what the child wrote (bounded)
  bool eof = false;
  bool reaped = false;      // by the supervisor's loop, which reaps all
  int status = 0;           // its wait status then
};

// Forks the scratch process; `in_child` closes the supervisor's fds there.
// false with a message in *err.
bool StartCheck(CheckRun *run, const std::function<void()> &in_child,
                std::string *err);
// Reads what the child wrote; true once it closed its end.
bool ReadCheck(CheckRun *run);
// After EOF: reaps the child; false while it has not exited yet. *reply is
// the reply line(s) for the client.
bool FinishCheck(CheckRun *run, std::string *reply);
// The time ran out: kills and reaps the child; the reply.
std::string AbortCheck(CheckRun *run);

#endif
