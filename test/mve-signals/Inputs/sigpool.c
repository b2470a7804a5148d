// sigpool.c: a threaded line server whose threads take signals and fork
// children (test/mve-signals/threads.test, test/mve/children-threads.test).
// main accepts
// in an epoll loop and hands each connection round-robin to one of two worker
// threads (mvedsua_thread_create) through the worker's pipe; every wait is
// epoll_wait(-1), an update point (mvedsua_wait_points).
// SIGRTMIN+2 and SIGUSR2 have one handler, which counts them for the thread
// it runs on. Lines:
//   "kick N"  pthread_kill(worker N, SIGRTMIN+2): a signal for that thread
//             alone (real-time: each one queued, none merged); answers
//             "kicked wN"
//   "hit"     answers "vTAG wK hits=H rt=A usr2=B": this worker's requests
//             and the signals its thread handled
//   "ver"     answers "version VERSION"
//   "fork"    the worker forks a child, which answers "child of wK: hits=H"
//             and exits; the worker waits for it
// -DREPLY_TAG=T answers "vT" to "hit", so that two versions answer alike.
// -DBAD_CHILD: the children worker 2 forks answer a wrong count.
#include <mvedsua.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 2
#ifndef REPLY_TAG
#define REPLY_TAG VERSION
#endif

struct worker {
  pthread_t thread;
  int id;
  int notify[2];
  int epfd;
  long hits;
};
struct worker workers[WORKERS];
int listen_fd, main_epfd, next_worker;
// Per thread (0: main, k: worker k): the signals its thread handled.
volatile sig_atomic_t rt[WORKERS + 1], usr2[WORKERS + 1];

static int self_index(void) {
  for (int i = 0; i < WORKERS; ++i)
    if (pthread_equal(workers[i].thread, pthread_self()))
      return i + 1;
  return 0;
}

static void on_signal(int sig) {
  int k = self_index();
  if (sig == SIGRTMIN + 2)
    rt[k]++;
  else
    usr2[k]++;
}

static void serve_line(struct worker *w, int fd) {
  char buf[256], out[96];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    return;
  }
  buf[n] = 0;
  int len, target;
  if (sscanf(buf, "kick %d", &target) == 1 && target >= 1 &&
      target <= WORKERS) {
    pthread_kill(workers[target - 1].thread, SIGRTMIN + 2);
    len = snprintf(out, sizeof out, "kicked w%d\n", target);
  } else if (strncmp(buf, "fork", 4) == 0) {
    pid_t child = fork();
    if (child == 0) {
      long shown = w->hits;
#ifdef BAD_CHILD // a bug in the new version that only worker 2's children show
      if (w->id == 2)
        shown += 100;
#endif
      len = snprintf(out, sizeof out, "child of w%d: hits=%ld\n", w->id, shown);
      write(fd, out, (size_t)len);
      _exit(0);
    }
    if (child > 0)
      waitpid(child, NULL, 0);
    else
      write(fd, "fork failed\n", 12);
    return;
  } else if (strncmp(buf, "ver", 3) == 0) {
    len = snprintf(out, sizeof out, "version %d\n", VERSION);
  } else {
    w->hits++;
    len = snprintf(out, sizeof out, "v%d w%d hits=%ld rt=%d usr2=%d\n",
                   REPLY_TAG, w->id, w->hits, (int)rt[w->id],
                   (int)usr2[w->id]);
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
  for (int i = 0; i < WORKERS; ++i) {
    struct worker *w = &workers[i];
    w->id = i + 1;
    pipe(w->notify);
    w->epfd = epoll_create1(0);
    struct epoll_event nev = {EPOLLIN, {.fd = w->notify[0]}};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->notify[0], &nev);
  }
}

// In each version's main: the new version's handler replaces the old one's.
static void handle_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGRTMIN + 2, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
}

int main(int argc, char **argv) {
  mvedsua_wait_points(MVEDSUA_WAIT_EPOLL);
  handle_signals();
  if (!mvedsua_is_updating()) {
    setup(atoi(argv[1]));
    for (int i = 0; i < WORKERS; ++i)
      mvedsua_thread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    printf("ready\n");
    fflush(stdout);
  }
  for (;;) {
    struct epoll_event ev;
    if (epoll_wait(main_epfd, &ev, 1, -1) != 1)
      continue;
    int conn = accept(listen_fd, NULL, NULL);
    if (conn < 0)
      continue;
    struct worker *w = &workers[next_worker++ % WORKERS];
    write(w->notify[1], &conn, sizeof conn);
  }
}
