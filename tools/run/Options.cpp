// Options.cpp: parsing mvedsua-run's command line.
#include "Options.h"
#include "ToolApi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char kUsage[] =
    "usage: mvedsua-run [--control SOCKET] APP.so [ARGS...]\n"
    "       mvedsua-run --list-state [--json] APP.so\n"
    "\n"
    "Runs the updatable version APP.so (built with MvedsuaPass.so): its main\n"
    "gets argv[0] = APP.so as given and ARGS, and its exit status is ours.\n"
    "\n"
    "  --control SOCKET  serve the control socket SOCKET (see mvedsua-ctl)\n"
    "  --wait-points LIST  make these blocking waits update points, in main\n"
    "                    and in threads started by mvedsua_thread_create:\n"
    "                    a comma-separated list of epoll_wait, poll, select,\n"
    "                    accept, or all (docs/threads.md)\n"
    "  --list-state      print APP.so's state registry and exit\n"
    "  --json            with --list-state: print it as JSON\n"
    "  --help            print this help\n";

static int UsageError(const char *fmt, const char *arg) {
  fprintf(stderr, "mvedsua-run: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see mvedsua-run --help)\n");
  return -1;
}

// Consumes the option at argv[*i]; -1 on a usage error, 1 on --help.
static int ParseOption(int argc, char **argv, int *i, RunOptions *opts) {
  const char *arg = argv[*i];
  if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
    fputs(kUsage, stdout);
    return 1;
  }
  if (strcmp(arg, "--list-state") == 0) {
    opts->list_state = true;
  } else if (strcmp(arg, "--json") == 0) {
    opts->json = true;
  } else if (strcmp(arg, "--control") == 0) {
    if (*i + 1 >= argc || !argv[*i + 1][0])
      return UsageError("%s needs a socket path", arg);
    opts->control = argv[++*i];
  } else if (strncmp(arg, "--control=", 10) == 0 && arg[10]) {
    opts->control = arg + 10;
  } else if (strcmp(arg, "--wait-points") == 0) {
    char bad[64] = "";
    if (*i + 1 >= argc)
      return UsageError("%s needs a list of epoll_wait, poll, select, accept "
                        "or all, separated by commas",
                        arg);
    if (mvedsua_rt_parse_wait_points(argv[*i + 1], bad, sizeof bad) < 0)
      return UsageError("--wait-points: unknown wait '%s' (known: epoll_wait, "
                        "poll, select, accept, all)",
                        bad);
    // The runtime reads it when the program starts (Threads.cpp).
    setenv("MVEDSUA_WAIT_POINTS", argv[++*i], 1);
  } else {
    return UsageError("unknown option '%s'", arg);
  }
  return 0;
}

static int CheckCombination(const RunOptions *opts) {
  if (!opts->app)
    return UsageError("%s", "no APP.so given");
  if (opts->json && !opts->list_state)
    return UsageError("%s", "--json only goes with --list-state");
  if (opts->list_state && opts->control)
    return UsageError("%s", "--list-state does not run the program: no --control");
  if (opts->list_state && opts->app_argc > 1)
    return UsageError("--list-state takes no program arguments (got '%s')",
                      opts->app_argv[1]);
  return 0;
}

int ParseRunOptions(int argc, char **argv, RunOptions *opts) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1]; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    int r = ParseOption(argc, argv, &i, opts);
    if (r != 0)
      return r;
  }
  if (i < argc) {
    opts->app = argv[i];
    opts->app_argc = argc - i;
    opts->app_argv = argv + i;
  }
  return CheckCombination(opts);
}
