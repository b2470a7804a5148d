// A server with background threads like redis' bio threads: 8 managed
// workers wait for jobs in a condition wait that is an update point; main
// hands worker 0 a job (a malloc, a 200 ms sleep, a write, a free) and
// decides what it does next from how many jobs are still pending, a count
// the worker writes and main reads in memory (redis: whether the AOF fsync
// thread is still busy decides whether main postpones its write).
// Each worker mallocs at its start, so the leader has 9 malloc arenas. In a
// multi-version update the follower's workers are new threads; worker 0's
// first malloc there is after the update. V2 is slower (30 ms of CPU per
// round), so the follower's main lags behind its worker.
#include <mvedsua.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ToolApi.h"

#define NW 8
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
int started, posted, done, round_, last_busy;
void *kept[NW];

static void *worker(void *arg) {
  long id = (long)arg;
  pthread_mutex_lock(&lock);
  if (!mvedsua_is_updating()) {
    kept[id] = malloc(64 * 1024); // this thread's own arena
    started++;
    pthread_cond_broadcast(&cond);
  }
  for (;;) {
    if (id != 0 || done == posted) {
      mvedsua_cond_wait_at("job", &cond, &lock);
      continue;
    }
    pthread_mutex_unlock(&lock);
    char *p = malloc(4096);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    snprintf(p, 4096, "worker: job %d done\n", done + 1);
    write(1, p, strlen(p));
    free(p);
    pthread_mutex_lock(&lock);
    done++;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (!mvedsua_is_updating()) {
    for (long i = 0; i < NW; ++i) {
      pthread_t t;
      mvedsua_thread_create(&t, NULL, worker, (void *)i);
    }
    pthread_mutex_lock(&lock);
    while (started < NW)
      pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    printf("main: %d workers\n", started);
    fflush(stdout);
    if (mvedsua_rt_request_mve_update(argv[1], NULL) != 0) {
      perror("request");
      return 1;
    }
  }
  for (; round_ < 80; ++round_) {
    mvedsua_update_point("main");
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&lock);
    if (round_ == 5) {
      posted++;
      pthread_cond_broadcast(&cond);
    }
    int busy = posted != done;
    pthread_mutex_unlock(&lock);
#ifdef V2
    for (volatile long spin = 0; spin < 30 * 1000 * 1000; ++spin) {
    }
#endif
    busy = (int)mvedsua_shared_value(busy);
    if (busy != last_busy) {
      printf("main: worker %s\n", busy ? "busy" : "idle");
      fflush(stdout);
      last_busy = busy;
    }
  }
  printf("main: done\n");
  return 0;
}
