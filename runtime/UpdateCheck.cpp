// UpdateCheck.cpp: would an in-place update from one version file to another
// be accepted? (`mvedsua-ctl update --check`)
//
// The supervisor runs this in a scratch process it forks for the purpose:
// loading a version runs its constructors, which must never happen in the
// service. Both files are loaded there and the transfer planner is asked the
// questions an update asks (a registry, a transformer generated for this
// predecessor, every changed type covered, every function the state points to
// present in the new version), then the plan is dropped: nothing is written.
// The state it plans over is the versions' initial state; the running
// program's heap and stack are not there to be walked.
#include "StateTransfer.h"
#include "ToolApi.h"
#include "Transformers.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mvedsua {
namespace {

const char *BaseName(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

bool SameFile(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// dlopen would hand back the running version's object for the same file; an
// update loads a private copy then, and so does the check.
bool CopyToMemfd(const char *path, char *open_path, size_t size) {
  int in = open(path, O_RDONLY | O_CLOEXEC);
  int out = in < 0 ? -1 : memfd_create(BaseName(path), MFD_CLOEXEC);
  char buf[1 << 16];
  ssize_t n = 0;
  while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, size_t(n)) != n)
      n = -1;
  if (in >= 0)
    close(in);
  if (out < 0 || n < 0)
    return false;
  snprintf(open_path, size, "/proc/self/fd/%d", out);
  return true;
}

// Loads `path` as a version with a registry; its index, or -1 with *msg.
int LoadChecked(const char *path, bool private_copy, std::string *msg) {
  char open_path[kMaxPath];
  snprintf(open_path, sizeof open_path, "%s", path);
  if (private_copy && !CopyToMemfd(path, open_path, sizeof open_path)) {
    *msg = std::string("cannot make a private copy of ") + path + ": " +
           strerror(errno);
    return -1;
  }
  mvedsua_rt_loaded loaded;
  char err[1024];
  if (LoadVersionAt(path, open_path, &loaded, err, sizeof err) < 0) {
    *msg = err;
    return -1;
  }
  if (loaded.version < 0) {
    *msg = std::string(path) +
           " has no mvedsua registry (built without MvedsuaPass.so?)";
    return -1;
  }
  return loaded.version;
}

// What the accepted update would do with the state, in a few words.
std::string Summary(int to, const char *from_id, const char *to_id) {
  std::string ids = std::string("ids ") + from_id + " -> " + to_id + ": ";
  if (strcmp(from_id, to_id) == 0)
    return ids + "same state layout, every entry is copied";
  if (FindTransformer(to))
    return ids + "changed types are written by the state transformer built "
                 "into the new version for this predecessor";
  return ids + "no migrated entry changed its type (entries only added or "
               "removed; new ones keep their initialisers)";
}

// The planner's reasons start with what an update does with them.
std::string StripVerdict(const std::string &reason) {
  for (const char *prefix : {"update refused: ", "update failed: "})
    if (reason.compare(0, strlen(prefix), prefix) == 0)
      return reason.substr(strlen(prefix));
  return reason;
}

} // namespace
} // namespace mvedsua

using namespace mvedsua;

MVEDSUA_EXPORT int mvedsua_rt_check_update(const char *from_path,
                                           const char *to_path, char *out,
                                           size_t size) {
  std::string msg;
  int from = LoadChecked(from_path, false, &msg);
  int to = from < 0 ? -1
                    : LoadChecked(to_path, SameFile(from_path, to_path), &msg);
  if (from < 0 || to < 0) {
    snprintf(out, size, "%s", msg.c_str());
    return from < 0 ? -1 : 1;
  }
  char from_id[17], to_id[17];
  FormatVersionId(ComputeVersionId(from), from_id);
  FormatVersionId(ComputeVersionId(to), to_id);
  SnapshotLocals(from); // starts an empty plan: no frames run here
  std::string reason;
  int planned = PlanTransfer(from, to, BaseName(to_path), &reason);
  AbandonTransfer();
  if (planned < 0) {
    snprintf(out, size, "%s", StripVerdict(reason).c_str());
    return 1;
  }
  snprintf(out, size, "%s", Summary(to, from_id, to_id).c_str());
  return 0;
}
