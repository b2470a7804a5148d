// pool.c: a threaded line server for the thread tests. main accepts in an
// epoll loop and hands each connection round-robin to one of WORKERS worker
// threads (mvedsua_thread_create) through the worker's pipe; each worker
// serves its connections in its own epoll loop. Every wait is epoll_wait(-1),
// made an update point by mvedsua_wait_points: nothing in the program polls.
// A line "hit" is answered "vVERSION wK hits=N" (N: that worker's count;
// -DREPLY_TAG=T answers "vT" instead, so that two versions answer alike in
// a multi-version update), "ver" with "version VERSION", "self" with whether
// the worker's pthread_t names the thread that serves it. -DBAD_WORKER: worker
// 2 shows a wrong count.
// -DREBUILD_LOOP: the new version, while updating, replaces main's epoll
// instance as an event library that rebuilds its loop would (the
// registration deleted from the inherited instance, a new one created).
// -DSHARED_COUNT: "hit" answers "vT wK total=N", N counted over all workers
// (memory two threads share, written between their system calls); "big"
// answers 16 MiB of 'x' and a newline in one write, which blocks until the
// client has read most of it.
// -DSPAWN: a line "spawn" makes its worker start a helper thread
// (mvedsua_thread_create) that answers "helper says hi", and join it.
// -DSTUCK_WORKER: a line "block" makes its worker answer "blocking" and then
// block in a read() that no update can interrupt.
// -DSTALL_CMD: in version 2, a line "stall" makes its worker wait on a
// condition nothing signals (before it answers); version 1 answers
// "vT wK not stalled". In a follower of version 2 that thread then never
// makes its next call.
// -DCRASH_CMD: a line "crash" makes its worker crash (a null pointer
// written); without it, "crash" is answered "vT wK no crash".
// -DHOLD_LOCK: a line "hold" makes its worker take a lock (answered
// "vT wK holding") that it keeps, in its epoll_wait too, until a line
// "release"; main takes the same lock after it hands the fifth and later
// connections over, in version 2 after a computation of about 1.5 s (no
// system call). So in a follower of version 2 that replays the fifth accept
// and a "hold" made half a second after it, the worker takes the lock first,
// and main's thread then waits for it before its next call
// (threads/pool-mve.test, "locked").
// -DSLOW_UPDATE: a version started as an update computes about 1.5 s first
// (threads/pool-promote.test, "sigkill-updating").
// -DIGNORE_TERM: SIGTERM ignored (pool-promote.test, "term-then-kill").
// -DRULE_DIFF: what a new version changes on purpose, in two workers
// (threads/rules-mve.test, Inputs/pool-rules.rules): worker 1 also appends
// "w1 hit N" to pool-w1.log (opened at its first hit, in the working
// directory); worker 2 answers "hit" with "count=N" instead of "hits=N";
// with -DSPAWN, the helper says "hello" instead of "hi".
#include <fcntl.h>
#include <mvedsua.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef WORKERS
#define WORKERS 2
#endif
#ifndef REPLY_TAG // what "hit" answers begin with: "v" REPLY_TAG
#define REPLY_TAG VERSION
#endif

struct worker {
  pthread_t thread; // from mvedsua_thread_create
  int id;
  int notify[2]; // main writes a connection's fd here
  int epfd;
  long hits;
};
struct worker workers[WORKERS];
int listen_fd, main_epfd, next_worker;
int stuck_pipe[2];
long total_hits;
int *volatile crash_at; // null
pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
#ifdef RULE_DIFF
int w1_log = -1; // worker 1's own log
#endif
#ifdef HOLD_LOCK
pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
long accepted;
#endif
__attribute__((unused)) static void compute(long ms) { // about `ms` ms, no call
  for (volatile long i = 0; i < ms * 2000000L; i = i + 1)
    ;
}

#ifdef SPAWN
static void *helper_main(void *arg) {
  int fd = (int)(intptr_t)arg;
#ifdef RULE_DIFF
  write(fd, "helper says hello\n", 18);
#else
  write(fd, "helper says hi\n", 15);
#endif
  return NULL;
}
#endif

static void serve_line(struct worker *w, int fd) {
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    return;
  }
#ifdef STUCK_WORKER
  if (strncmp(buf, "block", 5) == 0) {
    char c;
    write(fd, "blocking\n", 9);
    read(stuck_pipe[0], &c, 1);
  }
#endif
  char out[64];
  int len;
#ifdef HOLD_LOCK
  int hold = strncmp(buf, "hold", 4) == 0, release = !strncmp(buf, "release", 7);
  if (hold || release) {
    if (hold)
      pthread_mutex_lock(&hold_lock);
    else
      pthread_mutex_unlock(&hold_lock);
    len = snprintf(out, sizeof out, "v%d w%d %s\n", REPLY_TAG, w->id,
                   hold ? "holding" : "released");
    write(fd, out, (size_t)len);
    return;
  }
#endif
#ifdef STALL_CMD
  if (strncmp(buf, "stall", 5) == 0) {
#if VERSION == 2
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&lock);
    for (;;)
      pthread_cond_wait(&never, &lock);
#endif
    len = snprintf(out, sizeof out, "v%d w%d not stalled\n", REPLY_TAG, w->id);
    write(fd, out, (size_t)len);
    return;
  }
#endif
#ifdef SPAWN
  if (strncmp(buf, "spawn", 5) == 0) {
    pthread_t t;
    int rc = mvedsua_thread_create(&t, NULL, helper_main,
                                   (void *)(intptr_t)fd);
    if (rc == 0)
      pthread_join(t, NULL);
    else
      write(fd, "spawn refused\n", 14);
    return;
  }
#endif
  if (strncmp(buf, "crash", 5) == 0) {
#ifdef CRASH_CMD
    *crash_at = 1;
#endif
    len = snprintf(out, sizeof out, "v%d w%d no crash\n", REPLY_TAG, w->id);
  } else if (strncmp(buf, "ver", 3) == 0) {
    len = snprintf(out, sizeof out, "version %d\n", VERSION);
  } else if (strncmp(buf, "self", 4) == 0) { // the handle names this thread
    len = snprintf(out, sizeof out, "w%d handle %s\n", w->id,
                   pthread_equal(w->thread, pthread_self()) ? "right" : "wrong");
  } else {
#ifdef SHARED_COUNT
    if (strncmp(buf, "big", 3) == 0) {
      static char blob[16 << 20];
      memset(blob, 'x', sizeof blob - 1);
      blob[sizeof blob - 1] = '\n';
      for (size_t done = 0; done < sizeof blob;) {
        ssize_t k = write(fd, blob + done, sizeof blob - done);
        if (k <= 0)
          return;
        done += (size_t)k;
      }
      return;
    }
    pthread_mutex_lock(&total_lock);
    long total = ++total_hits;
    pthread_mutex_unlock(&total_lock);
    len = snprintf(out, sizeof out, "v%d w%d total=%ld\n", REPLY_TAG, w->id,
                   total);
    write(fd, out, (size_t)len);
    return;
#endif
    w->hits++;
#ifdef BAD_WORKER // a bug in the new version that only worker 2 shows
    long shown = w->id == 2 ? w->hits + 100 : w->hits;
#else
    long shown = w->hits;
#endif
    const char *word = "hits";
#ifdef RULE_DIFF
    if (w->id == 1) {
      if (w1_log < 0)
        w1_log = open("pool-w1.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
      char line[32];
      int n = snprintf(line, sizeof line, "w1 hit %ld\n", w->hits);
      write(w1_log, line, (size_t)n);
    }
    if (w->id == 2)
      word = "count";
#endif
    len = snprintf(out, sizeof out, "v%d w%d %s=%ld\n", REPLY_TAG, w->id,
                   word, shown);
  }
  write(fd, out, (size_t)len);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  for (;;) {
    struct epoll_event evs[16];
    int n = epoll_wait(w->epfd, evs, 16, -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == w->notify[0]) {
        int conn;
        if (read(fd, &conn, sizeof conn) == sizeof conn) {
          struct epoll_event ev = {EPOLLIN, {.fd = conn}};
          epoll_ctl(w->epfd, EPOLL_CTL_ADD, conn, &ev);
        }
      } else {
        serve_line(w, fd);
      }
    }
  }
  return NULL;
}

static void setup(int port) {
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 64)) {
    perror("bind");
    exit(1);
  }
  main_epfd = epoll_create1(0);
  struct epoll_event ev = {EPOLLIN, {.fd = listen_fd}};
  epoll_ctl(main_epfd, EPOLL_CTL_ADD, listen_fd, &ev);
  pipe(stuck_pipe);
  for (int i = 0; i < WORKERS; ++i) {
    struct worker *w = &workers[i];
    w->id = i + 1;
    pipe(w->notify);
    w->epfd = epoll_create1(0);
    struct epoll_event nev = {EPOLLIN, {.fd = w->notify[0]}};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->notify[0], &nev);
  }
}

int main(int argc, char **argv) {
#ifndef WAIT_POINTS_FROM_COMMAND_LINE // else mvedsua-run --wait-points
  mvedsua_wait_points(MVEDSUA_WAIT_EPOLL);
#endif
  if (!mvedsua_is_updating()) {
#ifdef IGNORE_TERM
    signal(SIGTERM, SIG_IGN);
#endif
    setup(atoi(argv[1]));
    for (int i = 0; i < WORKERS; ++i)
      mvedsua_thread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    printf("ready\n");
    fflush(stdout);
  }
#ifdef SLOW_UPDATE
  else
    compute(1500);
#endif
#ifdef REBUILD_LOOP
  else {
    epoll_ctl(main_epfd, EPOLL_CTL_DEL, listen_fd, NULL);
    close(main_epfd);
    main_epfd = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {.fd = listen_fd}};
    epoll_ctl(main_epfd, EPOLL_CTL_ADD, listen_fd, &ev);
  }
#endif
  for (;;) {
    struct epoll_event ev;
    if (epoll_wait(main_epfd, &ev, 1, -1) != 1) {
      struct timespec now; // as libevent does after an interrupted wait
      clock_gettime(CLOCK_MONOTONIC, &now);
      continue;
    }
    int conn = accept(listen_fd, NULL, NULL);
    if (conn < 0)
      continue;
    struct worker *w = &workers[next_worker++ % WORKERS];
    write(w->notify[1], &conn, sizeof conn);
#ifdef HOLD_LOCK
    if (++accepted > 2 * WORKERS) {
#if VERSION == 2
      compute(1500);
#endif
      pthread_mutex_lock(&hold_lock);
      pthread_mutex_unlock(&hold_lock);
    }
#endif
  }
}
