/* refusals.c: start_follower refuses what the layer cannot follow yet. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int mvedsua_rt_mve_start_follower(void);

static int go;
static void *idle(void *arg) {
  while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
    usleep(1000);
  return arg;
}

static void attempt(const char *when) {
  int r = mvedsua_rt_mve_start_follower();
  /* The same text in both processes, or the follower would diverge. */
  printf("%s: %s\n", when, r < 0 ? strerror(errno) : "started");
  fflush(stdout);
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, idle, NULL);
  attempt("two threads");
  __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
  pthread_join(t, NULL);
  attempt("one thread");
  attempt("again"); /* both processes: a follower exists / is one */
  /* Threads cannot be started while a follower exists (from a SIGSYS
   * handler a new thread would start on no stack): EAGAIN-like failure,
   * identical in leader and follower. */
  int r = pthread_create(&t, NULL, idle, NULL);
  printf("pthread_create with a follower: %s\n", r ? "refused" : "started");
  return 0;
}
