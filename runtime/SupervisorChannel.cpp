// SupervisorChannel.cpp: the program's side of the channel to mvedsua-run.
//
// The supervisor forks the program and keeps the other end of a socketpair.
// Over it the program announces, once its version is loaded, which version it
// runs ("hello PID ID PATH"). Updates will use it the other way: the supervisor
// writes a request and sends kWakeSignal, whose handler only sets
// __mvedsua_update_pending, so the program picks the request up at its next
// update point, outside any signal handler.
#include "Runtime.h"
#include "ToolApi.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace mvedsua {
namespace {

int g_supervisor_fd = -1;

void OnWake(int) {
  __atomic_store_n(&__mvedsua_update_pending, 1, __ATOMIC_RELAXED);
}

bool WriteAll(int fd, const char *buf, size_t len) {
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

} // namespace

int SupervisorFd() { return g_supervisor_fd; }

// "hello PID ID PATH": ID is "-" for a version without a registry, PATH is
// absolute so the operator sees which file runs whatever the supervisor's cwd.
void AnnounceVersion(int v, const char *loaded_path) {
  if (g_supervisor_fd < 0)
    return;
  char real[kMaxPath];
  if (realpath(loaded_path, real))
    loaded_path = real;
  char id[17] = "-";
  if (v >= 0)
    FormatVersionId(ComputeVersionId(v), id);
  char line[kMaxPath + 64];
  int n = snprintf(line, sizeof line, "hello %d %s %s\n", int(getpid()), id,
                   loaded_path);
  if (n < 0 || size_t(n) >= sizeof line ||
      !WriteAll(g_supervisor_fd, line, size_t(n)))
    Report("error: cannot tell the supervisor which version runs: %s",
           strerror(errno));
}

} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT int mvedsua_rt_attach_supervisor(int fd) {
  struct sigaction sa = {};
  sa.sa_handler = OnWake;
  sa.sa_flags = SA_RESTART; // the program's blocking calls carry on
  sigemptyset(&sa.sa_mask);
  if (sigaction(MVEDSUA_WAKE_SIGNAL, &sa, nullptr) != 0)
    return -1;
  g_supervisor_fd = fd;
  return 0;
}
