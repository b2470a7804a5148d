// RunMain.cpp: mvedsua-run, which runs an updatable version under its
// supervisor (Supervisor.cpp), or lists a version's state.
//
// Exit codes of its own: 2 for usage errors, 1 for failures; otherwise the
// program's.
#include "Options.h"
#include "Supervisor.h"
#include "ToolApi.h"

#include <stdio.h>
#include <stdlib.h>

static int Fail(const char *message) {
  fprintf(stderr, "mvedsua-run: error: %s\n", message);
  return 1;
}

static int Load(const char *app, mvedsua_rt_loaded *loaded) {
  char err[1024];
  if (mvedsua_rt_load_version(app, loaded, err, sizeof err) < 0)
    return Fail(err);
  return 0;
}

static int ListState(const RunOptions &opts) {
  mvedsua_rt_loaded loaded;
  if (Load(opts.app, &loaded) != 0)
    return 1;
  if (loaded.version < 0) {
    fprintf(stderr,
            "mvedsua-run: error: %s has no mvedsua registry (built without "
            "MvedsuaPass.so?)\n",
            opts.app);
    return 1;
  }
  mvedsua_rt_dump_state(loaded.version, stdout, opts.json);
  return fflush(stdout) == 0 ? 0 : Fail("cannot write the state listing");
}

int main(int argc, char **argv) {
  RunOptions opts;
  int parsed = ParseRunOptions(argc, argv, &opts);
  if (parsed != 0)
    return parsed < 0 ? 2 : 0;
  return opts.list_state ? ListState(opts) : Supervise(opts);
}
