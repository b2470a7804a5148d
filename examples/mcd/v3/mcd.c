/*
 * mcd.c: start-up, the threads, and connections.
 *
 * The main thread listens and accepts on its own event_base and hands each
 * connection, round-robin, to a worker: it writes a message carrying the
 * descriptor to the worker's notify pipe. Each worker runs event_base_loop
 * on its own event_base and serves its connections.
 *
 * Updates (docs/mcd.md). Every thread loops around event_base_loop(base,
 * EVLOOP_ONCE) with an update point before each turn ("main", "worker"), so
 * an update stops it outside libevent and the new version goes on with the
 * same event_base: nothing is registered again, nothing reaches the kernel
 * (in a multi-version update the epoll instances are shared with the old
 * version, which goes on with them). A thread blocked in its loop is woken
 * for an update by its kick (mvedsua_thread_on_update): a byte on the pipe
 * its base watches. A new version's main() finds everything it would
 * initialise in the migrated state (mvedsua_is_updating()); the runtime
 * relaunches the workers in the new version (mcd_worker_main, same
 * argument). The only thing of the old version left in libevent is the
 * callback of each registered event, which each thread points at this
 * version's function (repoint_main, repoint_worker).
 */
#define _GNU_SOURCE /* accept4, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mcd.h"

/* ---- server state: every global is migrated to the next version -------- */

struct stats stats;
struct thread_stats thread_stats[MCD_MAX_WORKERS];
struct worker *workers MVEDSUA_ARRAY(nworkers);
int nworkers;
int next_worker;               /* round-robin dispatch */
int listen_fd = -1;
int stop_pipe[2] = {-1, -1};   /* the stop signal's handler and main's kick write here */
struct event_base *main_base;
struct main_events {
  struct event accept_ev MVEDSUA_OPAQUE; /* callbacks re-pointed by every version */
  struct event stop_ev MVEDSUA_OPAQUE;
} *main_events;                /* on the heap: libevent points into it */
int64_t process_started;
int server_port;
volatile sig_atomic_t stop_requested;

#define READ_CHUNK (16 * 1024)
#define KEEP_BUFFER (64 * 1024) /* larger idle buffers are freed */

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *out) {
  fprintf(out,
          "usage: mcd [-p PORT] [-l ADDR] [-t THREADS] [-m MB]\n"
          "  -p, --port N          TCP port to listen on (default %d, 0: any)\n"
          "  -l, --listen ADDR     numeric address to listen on (default %s)\n"
          "  -t, --threads N       worker threads (default %d, at most %d)\n"
          "  -m, --memory-limit MB item memory (default %d)\n",
          MCD_DEFAULT_PORT, MCD_DEFAULT_BIND, MCD_DEFAULT_THREADS, MCD_MAX_WORKERS,
          MCD_DEFAULT_MEMORY_MB);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

struct options {
  const char *bind_addr;
  int port;
  int threads;
  long memory_mb;
};

/* 0: run; 1: exit 0 (--help); -1: bad command line (said why). */
static int parse_args(int argc, char **argv, struct options *o) {
  static const struct option longopts[] = {
      {"port", required_argument, 0, 'p'},    {"listen", required_argument, 0, 'l'},
      {"threads", required_argument, 0, 't'}, {"memory-limit", required_argument, 0, 'm'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  o->bind_addr = MCD_DEFAULT_BIND;
  o->port = MCD_DEFAULT_PORT;
  o->threads = MCD_DEFAULT_THREADS;
  o->memory_mb = MCD_DEFAULT_MEMORY_MB;
  opterr = 0;
  int ch;
  long v;
  while ((ch = getopt_long(argc, argv, ":p:l:t:m:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'p':
      if (parse_int(optarg, 0, 65535, &v) < 0) {
        fprintf(stderr, "mcd: bad port '%s'\n", optarg);
        return -1;
      }
      o->port = (int)v;
      break;
    case 'l':
      o->bind_addr = optarg;
      break;
    case 't':
      if (parse_int(optarg, 1, MCD_MAX_WORKERS, &v) < 0) {
        fprintf(stderr, "mcd: bad thread count '%s' (1 to %d)\n", optarg, MCD_MAX_WORKERS);
        return -1;
      }
      o->threads = (int)v;
      break;
    case 'm':
      if (parse_int(optarg, 1, 1 << 20, &v) < 0) {
        fprintf(stderr, "mcd: bad memory limit '%s'\n", optarg);
        return -1;
      }
      o->memory_mb = v;
      break;
    case 'h':
      usage(stdout);
      return 1;
    case ':':
      fprintf(stderr, "mcd: option '%s' needs a value\n", argv[optind - 1]);
      return -1;
    default:
      fprintf(stderr, "mcd: unknown option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "mcd: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  return 0;
}

/* ---- signals: installed by every version, updating or not --------------- */

static void on_stop_signal(int sig) {
  (void)sig;
  int saved = errno;
  stop_requested = 1;
  if (stop_pipe[1] >= 0 && write(stop_pipe[1], "x", 1) < 0) {
    /* full pipe: a stop is already pending */
  }
  errno = saved;
}

static void install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* ---- connections (worker threads) --------------------------------------- */

void conn_event_cb(evutil_socket_t fd, short what, void *arg);

static void conn_watch(struct conn *c, short flags) {
  if (c->evflags == flags)
    return;
  struct worker *w = &workers[c->worker];
  event_del(&c->ev);
  c->evflags = flags;
  event_assign(&c->ev, w->base, c->fd, flags | EV_PERSIST, conn_event_cb, c);
  event_add(&c->ev, NULL);
}

static void conn_new(struct worker *w, int fd) {
  struct conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  c->fd = fd;
  c->worker = w->id;
  c->evflags = EV_READ;
  event_assign(&c->ev, w->base, fd, EV_READ | EV_PERSIST, conn_event_cb, c);
  if (event_add(&c->ev, NULL) < 0) {
    close(fd);
    free(c);
    return;
  }
  c->next = w->conns;
  if (w->conns)
    w->conns->prev = c;
  w->conns = c;
  __atomic_fetch_add(&w->nconns, 1, __ATOMIC_RELAXED); /* read by stats threads */
  STAT_ADD(curr_connections, 1);
  STAT_ADD(total_connections, 1);
  THREAD_STAT_ADD(w->id, total_conns, 1);
}

static void conn_close(struct conn *c) {
  struct worker *w = &workers[c->worker];
  event_del(&c->ev);
  close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  __atomic_fetch_sub(&w->nconns, 1, __ATOMIC_RELAXED);
  free(c->rbuf);
  free(c->wbuf);
  free(c);
  STAT_ADD(curr_connections, (uint64_t)-1);
}

/* 0: read something or nothing to read; -1: the connection is finished. */
static int conn_read(struct conn *c) {
  if (c->rsize - c->rlen < READ_CHUNK) {
    size_t size = c->rsize ? c->rsize : READ_CHUNK;
    while (size - c->rlen < READ_CHUNK)
      size *= 2;
    char *b = realloc(c->rbuf, size);
    if (!b)
      return -1;
    c->rbuf = b;
    c->rsize = size;
  }
  ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rsize - c->rlen);
  if (n > 0) {
    c->rlen += (size_t)n;
    THREAD_STAT_ADD(c->worker, bytes_read, (uint64_t)n);
    return 0;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return 0;
  return -1;
}

/* Writes what it can; -1 when the connection must close. */
static int conn_flush(struct conn *c) {
  while (c->wpos < c->wlen) {
    ssize_t n = write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);
    if (n > 0) {
      c->wpos += (size_t)n;
      THREAD_STAT_ADD(c->worker, bytes_written, (uint64_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      conn_watch(c, EV_WRITE);
      return 0;
    }
    return -1;
  }
  c->wpos = c->wlen = 0;
  if (c->wsize > KEEP_BUFFER) {
    free(c->wbuf);
    c->wbuf = NULL;
    c->wsize = 0;
  }
  if (c->closing)
    return -1;
  if (c->rlen == 0 && c->rsize > KEEP_BUFFER) {
    free(c->rbuf);
    c->rbuf = NULL;
    c->rsize = 0;
  }
  conn_watch(c, EV_READ);
  return 0;
}

void conn_event_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  struct conn *c = arg;
  if (what & EV_READ) {
    if (conn_read(c) < 0) {
      conn_close(c);
      return;
    }
    proto_process(c);
  }
  if (conn_flush(c) < 0)
    conn_close(c);
}

/* ---- workers ------------------------------------------------------------ */

static int notify(struct worker *w, int what, int fd) {
  struct notify_msg m = {what, fd};
  return write(w->notify_wr, &m, sizeof m) == (ssize_t)sizeof m ? 0 : -1;
}

void worker_notify_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct worker *w = arg;
  struct notify_msg m[16];
  ssize_t n = read(w->notify_rd, m, sizeof m);
  for (ssize_t i = 0; i < n / (ssize_t)sizeof *m; i++) {
    if (m[i].what == 'q')
      event_base_loopbreak(w->base);
    else if (m[i].what == 'c')
      conn_new(w, m[i].fd);
    /* 'u', the kick: the loop returns, the update point comes */
  }
}

/* An update stopped the old version at its update point: libevent's events
 * still call the old version's functions. Each is pointed at this version's
 * in place: its registration, the event_base and its epoll instance stay as
 * they are (a multi-version update's old version goes on using them). */
static void event_repoint(struct event *ev, event_callback_fn cb) {
  ev->ev_evcallback.evcb_cb_union.evcb_callback = cb;
}

static void repoint_worker(struct worker *w) {
  event_repoint(&w->notify_ev, worker_notify_cb);
  for (struct conn *c = w->conns; c; c = c->next)
    event_repoint(&c->ev, conn_event_cb);
}

/* A worker's wake-up for an update (called by the runtime from the thread
 * that drives it): its loop returns, and the thread comes to its point. */
static void worker_kick(void *arg) {
  if (notify(arg, 'u', -1) < 0) {
    /* full pipe: the worker has messages to read anyway */
  }
}

/* Each worker thread. Started by mvedsua_thread_create with its index; an
 * update relaunches it here in the new version with the same index. */
void *mcd_worker_main(void *arg) {
  struct worker *w = &workers[(intptr_t)arg];
  mvedsua_thread_on_update(worker_kick, w);
  /* Nothing to initialise here (main set the worker up). */
  if (mvedsua_is_updating())
    repoint_worker(w);
  for (;;) {
    mvedsua_update_point("worker");
    if (event_base_loop(w->base, EVLOOP_ONCE) < 0 || event_base_got_break(w->base))
      break;
  }
  /* stopped ('q'): main joins this thread and closes the connections */
  return NULL;
}

static int start_workers(int n) {
  nworkers = n;
  workers = calloc((size_t)n, sizeof *workers);
  if (!workers)
    return -1;
  for (int i = 0; i < n; i++) {
    struct worker *w = &workers[i];
    int fds[2];
    w->id = i;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
      return -1;
    w->notify_rd = fds[0];
    w->notify_wr = fds[1];
    w->base = event_base_new();
    if (!w->base)
      return -1;
    event_assign(&w->notify_ev, w->base, w->notify_rd, EV_READ | EV_PERSIST, worker_notify_cb, w);
    event_add(&w->notify_ev, NULL);
  }
  for (int i = 0; i < n; i++)
    if (mvedsua_thread_create(&workers[i].thread, NULL, mcd_worker_main, (void *)(intptr_t)i) != 0)
      return -1;
  return 0;
}

/* ---- the main thread ---------------------------------------------------- */

static void dispatch(int fd) {
  struct worker *w = &workers[next_worker];
  next_worker = (next_worker + 1) % nworkers;
  if (notify(w, 'c', fd) < 0) {
    perror("mcd: notify pipe");
    close(fd);
  }
}

void accept_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  (void)arg;
  for (int i = 0; i < 64; i++) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        perror("mcd: accept");
      return;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    dispatch(c);
  }
}

void stop_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  (void)arg;
  char buf[16];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  /* main's loop returns after this callback and looks at stop_requested */
}

static void register_main_events(void) {
  event_assign(&main_events->accept_ev, main_base, listen_fd, EV_READ | EV_PERSIST, accept_cb, NULL);
  event_add(&main_events->accept_ev, NULL);
  event_assign(&main_events->stop_ev, main_base, stop_pipe[0], EV_READ | EV_PERSIST, stop_cb, NULL);
  event_add(&main_events->stop_ev, NULL);
}

/* The main thread's counterpart of repoint_worker. */
static void repoint_main(void) {
  event_repoint(&main_events->accept_ev, accept_cb);
  event_repoint(&main_events->stop_ev, stop_cb);
}

/* main's wake-up for an update: called in a signal handler when a request
 * arrives (a write is async-signal-safe). */
static void main_kick(void *arg) {
  (void)arg;
  if (write(stop_pipe[1], "u", 1) != 1) {
    /* full pipe: main has bytes to read anyway */
  }
}

static int open_listener(const char *addr, int port) {
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  int rc = getaddrinfo(addr, portstr, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "mcd: bad listen address '%s': %s\n", addr, gai_strerror(rc));
    return -2;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
    fprintf(stderr, "mcd: cannot listen on %s:%d: %s\n", addr, port, strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  server_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

/* Fresh start: everything an update would bring along. 0, or the exit status. */
static int init(int argc, char **argv) {
  struct options o;
  int rc = parse_args(argc, argv, &o);
  if (rc != 0)
    return rc > 0 ? -1 : 2;
  process_started = mcd_now();
  mem_limit = (size_t)o.memory_mb * 1024 * 1024;
  cache_init();
  listen_fd = open_listener(o.bind_addr, o.port);
  if (listen_fd < 0)
    return listen_fd == -2 ? 2 : 1;
  if (pipe2(stop_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
    perror("mcd: pipe");
    return 1;
  }
  main_base = event_base_new();
  main_events = calloc(1, sizeof *main_events);
  if (!main_base || !main_events) {
    fprintf(stderr, "mcd: cannot create the event base\n");
    return 1;
  }
  register_main_events();
  if (start_workers(o.threads) < 0) {
    perror("mcd: starting the worker threads");
    return 1;
  }
  fprintf(stderr, "mcd: listening on %s:%d with %d worker threads\n", o.bind_addr, server_port,
          nworkers);
  return 0;
}

static void shutdown_workers(void) {
  for (int i = 0; i < nworkers; i++)
    if (notify(&workers[i], 'q', -1) < 0)
      perror("mcd: notify pipe");
  for (int i = 0; i < nworkers; i++)
    pthread_join(workers[i].thread, NULL);
  for (int i = 0; i < nworkers; i++)
    while (workers[i].conns)
      conn_close(workers[i].conns);
}

int main(int argc, char **argv) {
  install_signal_handlers();
  if (!mvedsua_is_updating()) {
    int rc = init(argc, argv);
    if (rc != 0)
      return rc < 0 ? 0 : rc;
  } else {
    repoint_main();
  }
  mvedsua_thread_on_update(main_kick, NULL);
  while (!stop_requested) {
    mvedsua_update_point("main");
    if (event_base_loop(main_base, EVLOOP_ONCE) < 0)
      break;
  }
  shutdown_workers();
  fprintf(stderr, "mcd: shutting down\n");
  return 0;
}
