// A server that forks a saver child on request, like redis' BGSAVE: the
// child runs on its own for a while and exits with status 7; the main loop
// (an update point every round) reaps it with waitpid(-1, WNOHANG), as
// redis' serverCron does, and so asks promote to wait for its children. Commands come on stdin, one a line (read by the
// leader, replayed to a follower): "fork MS" starts a child that lives MS
// milliseconds, "quit" ends. With -DTHREAD an idle managed thread (like
// redis' bio threads) makes it a program with threads. VERSION is the same
// in both builds' output: a follower must write what its leader writes.
#include <errno.h>
#include <mvedsua.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t child;
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

#ifdef THREAD
static void *idle(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) // nobody signals it: only an update gets it out
    mvedsua_cond_wait_at("idle", &cond, &lock);
  return NULL;
}
#endif

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static void reap(void) {
  int st = 0;
  pid_t r = waitpid(-1, &st, WNOHANG);
  if (r == child && r > 0) {
    say("saver: child reaped, exit %d\n", WEXITSTATUS(st));
    child = 0;
  } else if (r < 0) {
    say("saver: waitpid: %s, the child is lost\n", strerror(errno));
    child = 0;
  }
}

static int command(void) {
  char line[64];
  ssize_t n = read(0, line, sizeof line - 1);
  if (n <= 0)
    return 0;
  line[n] = 0;
  if (strncmp(line, "fork ", 5) == 0 && !child) {
    long ms = atol(line + 5);
    child = fork();
    if (child == 0) {
      struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
      nanosleep(&ts, NULL);
      _exit(7);
    }
    say("saver: forked child %d for %ld ms\n", (int)child, ms);
  }
  return strncmp(line, "quit", 4) != 0;
}

int main(void) {
  mvedsua_promote_after_children();
  if (!mvedsua_is_updating()) {
#ifdef THREAD
    pthread_t t;
    mvedsua_thread_create(&t, NULL, idle, NULL);
#endif
    say("saver: ready\n");
  }
  for (;;) {
    mvedsua_update_point("loop");
    struct pollfd p = {0, POLLIN, 0};
    if (poll(&p, 1, 20) == 1 && !command())
      break;
    if (child > 0)
      reap();
  }
  say("saver: done\n");
  return 0;
}
