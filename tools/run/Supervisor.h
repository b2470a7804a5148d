// Supervisor.h: mvedsua-run as the service's long-lived process.
#ifndef MVEDSUA_TOOLS_RUN_SUPERVISOR_H
#define MVEDSUA_TOOLS_RUN_SUPERVISOR_H

#include "Options.h"

// Runs the program in a child process and supervises it until it ends; then
// exits with its status or dies of its signal. Returns only on a failure to
// start (exit code 1, message printed).
int Supervise(const RunOptions &opts);

// In the child: loads APP.so and runs its main; never returns.
[[noreturn]] void RunProgram(const RunOptions &opts, int channel_fd);

#endif
