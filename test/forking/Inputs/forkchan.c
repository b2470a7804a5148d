/* forkchan.c: a program that forks while an update request from the
 * supervisor is pending (woken, not yet taken), built as two versions with
 * -DVERSION=1 and -DVERSION=2.
 *
 * Version 1 waits until the supervisor's wake-up signal has set the update
 * flag (so the request is in the channel and the flag is 1), then forks
 * before passing any update point: the child inherits the flag and passes
 * its own update point "child", then exits. The parent waits for it and only
 * then reaches its update point "main", where the request must be taken:
 * by the process that mvedsua-run started, never by the child.
 *
 * Every line goes to stderr; "serving" names the version and the pid. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mvedsua.h"

extern volatile int __mvedsua_update_pending; /* libmvedsua's update flag */

volatile sig_atomic_t stop;
int announced MVEDSUA_NO_MIGRATE;

static void on_term(int sig) { stop = 1; }

static void nap(void) {
  struct timespec ts = {0, 2000000};
  nanosleep(&ts, NULL);
}

int main(void) {
  signal(SIGTERM, on_term);
  if (!mvedsua_is_updating()) {
    fprintf(stderr, "forkchan %d: ready in %d\n", VERSION, (int)getpid());
    while (!__mvedsua_update_pending && !stop)
      nap();
    pid_t pid = fork();
    if (pid == 0) {
      mvedsua_update_point("child");
      fprintf(stderr, "forkchan %d: child passed its update point, "
                      "updating %d\n", VERSION, mvedsua_is_updating());
      _exit(0);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    fprintf(stderr, "forkchan %d: child exited with status %d\n", VERSION,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  for (;;) {
    mvedsua_update_point("main");
    if (!announced) {
      announced = 1;
      fprintf(stderr, "forkchan %d: serving in %d\n", VERSION, (int)getpid());
    }
    if (stop)
      return 0;
    nap();
  }
}
