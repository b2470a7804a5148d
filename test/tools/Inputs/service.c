/* A small long-running program for the supervisor tests.
 *   serve        print "ready pid=P ppid=Q", then loop over an update point
 *                until a SIGTERM/SIGINT/SIGHUP arrives; print "got signal N"
 *                and return 40 + N
 *   exit N       return N
 *   raise N      die of signal N
 *   echo         copy one line from stdin to stdout and to stderr
 */
#include <mvedsua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static int loops;

static void on_signal(int sig) { got = sig; }

static int serve(void) {
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGHUP, on_signal);
  printf("ready pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
  fflush(stdout);
  while (!got) {
    mvedsua_update_point("loop");
    loops++;
    usleep(5000);
  }
  printf("got signal %d\n", (int)got);
  return 40 + got;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "serve") == 0)
    return serve();
  if (argc > 2 && strcmp(argv[1], "exit") == 0)
    return atoi(argv[2]);
  if (argc > 2 && strcmp(argv[1], "raise") == 0) {
    struct rlimit no_core = {0, 0}; /* no core files in the test directory */
    setrlimit(RLIMIT_CORE, &no_core);
    signal(atoi(argv[2]), SIG_DFL);
    raise(atoi(argv[2]));
    return 99;
  }
  if (argc > 1 && strcmp(argv[1], "echo") == 0) {
    char line[256];
    if (!fgets(line, sizeof line, stdin))
      return 1;
    printf("out: %s", line);
    fprintf(stderr, "err: %s", line);
    return 0;
  }
  fprintf(stderr, "service: bad arguments\n");
  return 2;
}
