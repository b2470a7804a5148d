// ServiceState.h: what the supervisor knows about the service it runs, as
// reported by mvedsua-ctl status.
#ifndef MVEDSUA_TOOLS_RUN_SERVICE_STATE_H
#define MVEDSUA_TOOLS_RUN_SERVICE_STATE_H

#include <string>
#include <sys/types.h>

struct ServiceState {
  pid_t supervisor = 0;
  pid_t leader = 0;          // the process running the program
  bool announced = false;    // the program said which version it runs
  std::string version_id;    // 16 hex digits; empty without a registry
  std::string version_path;  // absolute path of the running version

  // Updates are not performed yet: one version, led by one process.
  const char *Stage() const { return announced ? "single-leader" : "starting"; }
};

// Parses the program's "hello PID ID PATH" line into *st; false if malformed.
bool ParseHello(const std::string &line, ServiceState *st);

#endif
