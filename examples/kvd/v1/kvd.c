/*
 * kvd.c: start-up, the event loop and client connections.
 *
 * Control migration follows the mvedsua pattern: when a new version's main()
 * runs during an update, mvedsua_is_updating() is true and every piece of
 * initialisation that created state (arguments, listening socket, epoll
 * instance, key space) is skipped, because that state arrived with the
 * globals. The new version goes straight to the event loop, whose update
 * point completes the update.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvd.h"

/* ---- server state: every global is migrated to the next version -------- */

struct table db;
int listen_fd = -1;
int epoll_fd = -1;
struct client *clients;
size_t nclients;
uint64_t commands_processed;
uint64_t connections_accepted;
int server_port;
volatile sig_atomic_t stop_requested;

#define MAX_EVENTS 128
#define READ_CHUNK (16 * 1024)
#define MAX_QUERY_BUFFER (128 * 1024 * 1024) /* unparsed input per client */
#define KEEP_OUTPUT_BUFFER (1024 * 1024)     /* larger idle buffers are freed */

/* ---- options ------------------------------------------------------------ */

struct options {
  const char *bind_addr;
  int port;
};

static void usage(FILE *out) {
  fprintf(out, "usage: kvd [--port N] [--bind ADDR]\n"
               "  --port N     TCP port to listen on (default %d, 0: any)\n"
               "  --bind ADDR  numeric address to listen on (default %s)\n",
          KVD_DEFAULT_PORT, KVD_DEFAULT_BIND);
}

static int parse_port(const char *s, int *port) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > 65535)
    return -1;
  *port = (int)v;
  return 0;
}

/* Returns 0 to run, 1 when the program should exit 0 (--help), -1 on a bad
 * command line (after printing why). */
static int parse_args(int argc, char **argv, struct options *opt) {
  opt->bind_addr = KVD_DEFAULT_BIND;
  opt->port = KVD_DEFAULT_PORT;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 1;
    }
    if ((strcmp(a, "--port") == 0 || strcmp(a, "--bind") == 0) && i + 1 == argc) {
      fprintf(stderr, "kvd: option '%s' needs a value\n", a);
      return -1;
    }
    if (strcmp(a, "--port") == 0) {
      if (parse_port(argv[++i], &opt->port) < 0) {
        fprintf(stderr, "kvd: invalid port '%s' (expected 0-65535)\n", argv[i]);
        return -1;
      }
    } else if (strcmp(a, "--bind") == 0) {
      opt->bind_addr = argv[++i];
    } else {
      fprintf(stderr, "kvd: unknown option '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  return 0;
}

/* ---- start-up and shut-down --------------------------------------------- */

static void on_stop_signal(int sig) { stop_requested = 1; }

/* Handlers are code pointers into this version, so they are installed by
 * every version, including while updating. No SA_RESTART: the signal must
 * interrupt epoll_wait so the loop sees stop_requested. (A signal landing
 * between the check and epoll_wait is seen at the next event.) */
static void install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a vanished client is an EPIPE, not a death */
}

/* Binds a non-blocking listening socket; returns its fd or -1. */
static int open_listener(const char *addr, int port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICHOST |
                                       AI_NUMERICSERV};
  struct addrinfo *ai;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  int err = getaddrinfo(addr, portstr, &hints, &ai);
  if (err) {
    fprintf(stderr, "kvd: invalid --bind address '%s': %s\n", addr,
            gai_strerror(err));
    return -1;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
    fprintf(stderr, "kvd: cannot listen on %s:%d: %s\n", addr, port,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  return fd;
}

/* The port actually bound (differs from the requested one for --port 0). */
static int bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return -1;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int watch_fd(int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int server_start(const struct options *opt) {
  listen_fd = open_listener(opt->bind_addr, opt->port);
  if (listen_fd < 0)
    return -1;
  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0 || watch_fd(listen_fd, EPOLLIN) < 0) {
    fprintf(stderr, "kvd: cannot set up epoll: %s\n", strerror(errno));
    return -1;
  }
  table_init(&db);
  server_port = bound_port(listen_fd);
  fprintf(stderr, "kvd: listening on %s:%d\n", opt->bind_addr, server_port);
  return 0;
}

static void client_free(struct client *c);

static void server_stop(void) {
  while (clients)
    client_free(clients);
  if (epoll_fd >= 0)
    close(epoll_fd);
  if (listen_fd >= 0)
    close(listen_fd);
  epoll_fd = listen_fd = -1;
  table_free(&db);
}

/* ---- clients ------------------------------------------------------------ */

/* Clients are found by walking the list: epoll hands back the fd (never a
 * pointer, see kvd.h), and version 1 keeps clients in a list. */
static struct client *find_client(int fd) {
  for (struct client *c = clients; c; c = c->next)
    if (c->fd == fd)
      return c;
  return NULL;
}

static void client_free(struct client *c) {
  close(c->fd); /* also removes it from the epoll set */
  if (c->prev)
    c->prev->next = c->next;
  else
    clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  nclients--;
  free(c->inbuf);
  free(c->outbuf);
  free(c);
}

#ifdef KVD_CONNECTION_LOG
/* A variant for the rules scenarios (docs/rules.md): each new connection is
 * appended to kvd-connections.log in the working directory. */
static void log_connection(int fd) {
  int log = open("kvd-connections.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                 0644);
  if (log < 0)
    return;
  char line[64];
  int n = snprintf(line, sizeof line, "connection on fd %d\n", fd);
  if (write(log, line, (size_t)n) < 0)
    fprintf(stderr, "kvd: connection log: %s\n", strerror(errno));
  close(log);
}
#endif

static void client_add(int fd) {
  struct client *c = calloc(1, sizeof *c);
  int one = 1; /* replies are small and latency matters */
#ifdef KVD_NODELAY_FIRST
  /* A variant for the rules scenarios (docs/rules.md): the two calls of a
   * new connection in the other order, as redis 2.0.1 reordered its own. */
  if (c)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#endif
  if (!c || watch_fd(fd, EPOLLIN) < 0) {
    fprintf(stderr, "kvd: dropping a new connection: %s\n",
            c ? strerror(errno) : "out of memory");
    free(c);
    close(fd);
    return;
  }
#ifndef KVD_NODELAY_FIRST
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#endif
#ifdef KVD_CONNECTION_LOG
  log_connection(fd);
#endif
  c->fd = fd;
  c->next = clients;
  if (clients)
    clients->prev = c;
  clients = c;
  nclients++;
  connections_accepted++;
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      client_add(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      fprintf(stderr, "kvd: accept: %s\n", strerror(errno));
    return;
  }
}

/* Reads what is available into the input buffer. Returns -1 when the
 * connection is finished (EOF, error, or an oversized unparsed request). */
static int client_read(struct client *c) {
  if (c->incap - c->inlen < READ_CHUNK) {
    size_t cap = c->incap ? c->incap * 2 : 2 * READ_CHUNK;
    if (cap > MAX_QUERY_BUFFER + READ_CHUNK) {
      fprintf(stderr, "kvd: closing client %d: request larger than %d bytes\n",
              c->fd, MAX_QUERY_BUFFER);
      return -1;
    }
    char *buf = realloc(c->inbuf, cap);
    if (!buf)
      return -1;
    c->inbuf = buf;
    c->incap = cap;
  }
  ssize_t n = read(c->fd, c->inbuf + c->inlen, c->incap - c->inlen);
  if (n > 0) {
    c->inlen += (size_t)n;
    return 0;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return 0;
  return -1;
}

/* Executes every complete request in the input buffer, then drops the
 * executed bytes. A partial request stays buffered for the next read. */
static void client_process_input(struct client *c) {
  size_t off = 0;
  while (off < c->inlen && !c->close_after_write) {
    struct request req;
    size_t used = 0;
    char error[128];
    enum parse_result r = parse_request(c->inbuf + off, c->inlen - off, &req,
                                        &used, error, sizeof error);
    if (r == PARSE_OK)
      execute_request(c, &req);
    request_release(&req);
    if (r == PARSE_INCOMPLETE)
      break;
    if (r == PARSE_ERROR) { /* the stream cannot be resynchronised */
      reply_error(c, "%s", error);
      c->close_after_write = 1;
      off = c->inlen;
      break;
    }
    off += used;
  }
  memmove(c->inbuf, c->inbuf + off, c->inlen - off);
  c->inlen -= off;
}

/* Registers EPOLLOUT only while output is pending, so an idle client does
 * not wake the loop. */
static int client_set_want_write(struct client *c, int want) {
  if (c->want_write == want)
    return 0;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                           .data.fd = c->fd};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
    return -1;
  c->want_write = want;
  return 0;
}

/* Sends as much pending output as the socket takes. Returns -1 when the
 * connection is finished. */
static int client_flush(struct client *c) {
  while (c->outpos < c->outlen) {
    ssize_t n = send(c->fd, c->outbuf + c->outpos, c->outlen - c->outpos,
                     MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n < 0)
      return -1;
    c->outpos += (size_t)n;
  }
  int pending = c->outpos < c->outlen;
  if (!pending) {
    c->outpos = c->outlen = 0;
    if (c->outcap > KEEP_OUTPUT_BUFFER) { /* give back a burst's buffer */
      free(c->outbuf);
      c->outbuf = NULL;
      c->outcap = 0;
    }
    if (c->close_after_write)
      return -1;
  }
  return client_set_want_write(c, pending);
}

static void handle_client_event(int fd, uint32_t events) {
  struct client *c = find_client(fd);
  if (!c)
    return; /* closed earlier in this batch of events */
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && client_read(c) < 0) {
    client_free(c);
    return;
  }
  client_process_input(c);
  if (client_flush(c) < 0)
    client_free(c);
}

/* ---- the event loop ----------------------------------------------------- */

/* Returns the exit status. The update point is the first thing of every
 * iteration: there no request is half-executed, all per-client progress is in
 * the client structs, and the only locals are this iteration's events. */
static int serve(void) {
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    mvedsua_update_point("loop");
    if (stop_requested)
      return 0;
    int n = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) /* a stop signal, or mvedsua waking us to update */
        continue;
      fprintf(stderr, "kvd: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.fd == listen_fd)
        accept_clients();
      else
        handle_client_event(events[i].data.fd, events[i].events);
    }
  }
}

int main(int argc, char **argv) {
  install_signal_handlers();
  if (!mvedsua_is_updating()) {
    struct options opt;
    int r = parse_args(argc, argv, &opt);
    if (r != 0)
      return r > 0 ? 0 : 2;
    if (server_start(&opt) < 0)
      return 1;
  }
  int status = serve();
  fprintf(stderr, "kvd: shutting down\n");
  server_stop();
  return status;
}
