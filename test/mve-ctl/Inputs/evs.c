/* evs.c: a small epoll line server whose versions key their epoll events
 * differently (test/mve-ctl/epoll-data.test).
 *
 *   evs.so PORT    serve 127.0.0.1:PORT
 *
 * Commands, one per line: "set K V" -> "ok", "get K" -> "value V" or
 * "missing", "ping" -> "pong", "crash" -> "no crash" (or a crash, below),
 * "quit" -> "bye" and the server closes the connection.
 *
 * Versions (-DEVS=...):
 *   1  v1: epoll_event.data holds the descriptor
 *   2  v2: epoll_event.data holds a pointer to the connection's struct (in
 *      this version's own globals: its address differs from v1's), or to
 *      `listener` for the listening socket
 *   3  v1-crash: v1, and "crash" dereferences a null pointer
 *   4  v2-crash: v2, and "crash" dereferences a null pointer
 *
 * Client connections are registered EPOLLIN | EPOLLONESHOT and re-armed with
 * EPOLL_CTL_MOD after each batch of commands: every command is an
 * epoll_wait, a recv, a send and an epoll_ctl.
 *
 * Registrations inherited from v1 (made before the update, in both
 * processes alike) still hold v1's data, a descriptor, when v2 runs: v2
 * notes at its update which descriptors v1 had registered (`legacy`) and
 * takes a value below MAXFD as a descriptor only for those. Any other value
 * is its own pointer: a v1 value given to v2 (a follower without the
 * mapping of epoll_event.data) is dereferenced as one and crashes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mvedsua.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 1024
#define NKEYS 512

struct conn {
  char in[1024];
  int len;
  int open;
};
struct conn conns[MAXFD];
struct entry {
  char key[32];
  char value[64];
  int used;
} store[NKEYS];
int listen_fd = -1, ep = -1;
#if EVS == 2 || EVS == 4
#define V2 1
struct conn listener;              /* the listening socket's data */
unsigned char legacy[MAXFD];       /* registered by v1, before the update */
#endif

static struct entry *find(const char *key) {
  for (int i = 0; i < NKEYS; ++i)
    if (store[i].used && strcmp(store[i].key, key) == 0)
      return &store[i];
  return NULL;
}

static void reply(int fd, const char *text) {
  char out[160];
  int n = snprintf(out, sizeof out, "%s\n", text);
  send(fd, out, (size_t)n, MSG_NOSIGNAL);
}

static void watch(int fd, uint32_t events, int op) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
#ifdef V2
  ev.data.ptr = fd == listen_fd ? &listener : &conns[fd];
#else
  ev.data.fd = fd;
#endif
  if (epoll_ctl(ep, op, fd, &ev) < 0)
    perror("evs: epoll_ctl");
}

static void drop(int fd) {
  conns[fd].open = 0;
  conns[fd].len = 0;
#ifdef V2
  legacy[fd] = 0;
#endif
  close(fd);
}

/* One command; 0 when the connection was closed. */
static int command(int fd, char *line) {
  char *arg = strchr(line, ' ');
  if (arg)
    *arg++ = 0;
  if (strcmp(line, "set") == 0 && arg && strchr(arg, ' ')) {
    char *value = strchr(arg, ' ');
    *value++ = 0;
    struct entry *e = find(arg);
    for (int i = 0; !e && i < NKEYS; ++i)
      if (!store[i].used)
        e = &store[i];
    if (!e) {
      reply(fd, "full");
      return 1;
    }
    snprintf(e->key, sizeof e->key, "%s", arg);
    snprintf(e->value, sizeof e->value, "%s", value);
    e->used = 1;
    reply(fd, "ok");
  } else if (strcmp(line, "get") == 0 && arg) {
    struct entry *e = find(arg);
    char out[128];
    snprintf(out, sizeof out, "value %s", e ? e->value : "");
    reply(fd, e ? out : "missing");
  } else if (strcmp(line, "ping") == 0) {
    reply(fd, "pong");
  } else if (strcmp(line, "crash") == 0) {
#if EVS == 3 || EVS == 4
    static struct entry *volatile nowhere;
    nowhere->used = 1;
#endif
    reply(fd, "no crash");
  } else if (strcmp(line, "quit") == 0) {
    reply(fd, "bye");
    drop(fd);
    return 0;
  } else {
    reply(fd, "error");
  }
  return 1;
}

static void readable(int fd) {
  struct conn *c = &conns[fd];
  ssize_t n = recv(fd, c->in + c->len, sizeof c->in - 1 - (size_t)c->len, 0);
  if (n <= 0) {
    if (n < 0 && errno == EAGAIN)
      return watch(fd, EPOLLIN | EPOLLONESHOT, EPOLL_CTL_MOD);
    return drop(fd);
  }
  c->len += (int)n;
  c->in[c->len] = 0;
  char *start = c->in, *nl;
  while ((nl = strchr(start, '\n'))) {
    *nl = 0;
    if (!command(fd, start))
      return;
    start = nl + 1;
  }
  c->len -= (int)(start - c->in);
  memmove(c->in, start, (size_t)c->len);
  watch(fd, EPOLLIN | EPOLLONESHOT, EPOLL_CTL_MOD);
}

static void accept_one(void) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0)
    return;
  if (fd >= MAXFD) {
    close(fd);
    return;
  }
  conns[fd].open = 1;
  conns[fd].len = 0;
#ifdef V2
  legacy[fd] = 0;
#endif
  watch(fd, EPOLLIN | EPOLLONESHOT, EPOLL_CTL_ADD);
}

static int start(int port) {
  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(listen_fd, 128) < 0) {
    perror("evs: bind");
    return -1;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  watch(listen_fd, EPOLLIN, EPOLL_CTL_ADD);
  fprintf(stderr, "evs: listening on 127.0.0.1:%d\n", port);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (!mvedsua_is_updating()) {
    if (argc < 2 || start(atoi(argv[1])) < 0)
      return 2;
  }
#ifdef V2
  else {
    /* v1's registrations hold descriptors (docs/mve.md, "epoll_event.data"). */
    legacy[listen_fd] = 1;
    for (int fd = 0; fd < MAXFD; ++fd)
      if (conns[fd].open)
        legacy[fd] = 1;
  }
#endif
  struct epoll_event evs[64];
  for (;;) {
    mvedsua_update_point("loop");
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0 && errno != EINTR) {
      perror("evs: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
#ifdef V2
      uint64_t v = evs[i].data.u64;
      int fd;
      if (v < MAXFD && legacy[v])
        fd = (int)v; /* inherited from v1 */
      else if (evs[i].data.ptr == &listener)
        fd = listen_fd;
      else { /* its own pointer (read: a stray value crashes here) */
        struct conn *c = evs[i].data.ptr;
        volatile int probe = c->open;
        (void)probe;
        fd = (int)(c - conns);
      }
#else
      int fd = evs[i].data.fd;
#endif
      if (fd == listen_fd)
        accept_one();
      else if (fd >= 0 && fd < MAXFD && conns[fd].open)
        readable(fd);
    }
  }
}
