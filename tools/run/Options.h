// Options.h: mvedsua-run's command line. Options come before APP.so; every
// argument after APP.so belongs to the program.
#ifndef MVEDSUA_TOOLS_RUN_OPTIONS_H
#define MVEDSUA_TOOLS_RUN_OPTIONS_H

struct RunOptions {
  const char *control = nullptr; // --control SOCKET
  bool list_state = false;       // --list-state
  bool json = false;             // --json (with --list-state)
  const char *app = nullptr;     // APP.so as given
  int app_argc = 0;              // APP.so and its arguments
  char **app_argv = nullptr;
};

// Parses argv into *opts. Returns -1 after printing a usage error, 1 when
// --help was printed, 0 otherwise.
int ParseRunOptions(int argc, char **argv, RunOptions *opts);

#endif
