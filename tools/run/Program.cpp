// Program.cpp: the child mvedsua-run forks, which loads APP.so and runs it.
#include "Supervisor.h"
#include "ToolApi.h"

#include <stdio.h>
#include <stdlib.h>

[[noreturn]] void RunProgram(const RunOptions &opts, int channel_fd) {
  if (mvedsua_rt_attach_supervisor(channel_fd) != 0)
    perror("mvedsua-run: warning: cannot set up update requests");
  mvedsua_rt_loaded loaded;
  char err[1024];
  if (mvedsua_rt_load_version(opts.app, &loaded, err, sizeof err) < 0) {
    fprintf(stderr, "mvedsua-run: error: %s\n", err);
    exit(1);
  }
  // A version without a registry still runs; it just cannot be updated.
  if (loaded.version < 0)
    fprintf(stderr,
            "mvedsua-run: warning: %s has no mvedsua registry (built without "
            "MvedsuaPass.so?): it cannot be updated\n",
            opts.app);
  exit(mvedsua_rt_run_main(&loaded, opts.app_argc, opts.app_argv));
}
