/*
 * kitsune-kv, version 1: a small key-value server written against Kitsune's
 * API (kitsune.h) and built with mvedsua unchanged (docs/kitsune.md).
 *
 * It speaks enough of RESP2 for redis-cli: PING, SET key value, GET key,
 * DEL key, DBSIZE, INFO. One thread, one epoll loop, one update point
 * ("loop") at its top. On an update the new version's main skips what
 * kitsune_is_updating() says was done (the listening socket, the epoll set,
 * the clients) and goes back to the loop.
 *
 * The table is a generic bucket list (E_GENERIC(@v)) whose payloads are
 * struct value objects, bound with E_G(struct value): mvedsua-xfgen
 * transforms them when struct value changes (version 2).
 */
#include <kitsune.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBUCKETS 1024
#define MAXARGS 8

struct value {
  size_t len;
  char *data E_ARRAY(self.len);
};

struct bucket {
  char *key;
  void E_T(@v) *val;
  struct bucket E_G(@v) *next;
} E_GENERIC(@v);

struct client {
  int fd;
  size_t inlen;
  char inbuf[16384];
  struct client *next;
};

struct bucket E_G(struct value) *table[NBUCKETS];
long nkeys;
long ncommands;
struct client *clients;
int listen_fd = -1, epoll_fd = -1;

static unsigned long hash(const char *s) {
  unsigned long h = 5381;
  while (*s)
    h = h * 33 + (unsigned char)*s++;
  return h % NBUCKETS;
}

static struct bucket *find(const char *key) {
  for (struct bucket *b = table[hash(key)]; b; b = b->next)
    if (strcmp(b->key, key) == 0)
      return b;
  return NULL;
}

static void reply(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    s += w;
    n -= (size_t)w;
  }
}

static void reply_str(int fd, const char *s) { reply(fd, s, strlen(s)); }

static void reply_int(int fd, long v) {
  char buf[32];
  snprintf(buf, sizeof buf, ":%ld\r\n", v);
  reply_str(fd, buf);
}

static void reply_bulk(int fd, const char *data, size_t len) {
  char head[32];
  snprintf(head, sizeof head, "$%zu\r\n", len);
  reply_str(fd, head);
  reply(fd, data, len);
  reply_str(fd, "\r\n");
}

static void cmd_set(int fd, char **argv, size_t *lens) {
  struct bucket *b = find(argv[1]);
  if (!b) {
    unsigned long h = hash(argv[1]);
    b = calloc(1, sizeof *b);
    b->key = strdup(argv[1]);
    b->val = calloc(1, sizeof(struct value));
    b->next = table[h];
    table[h] = b;
    nkeys++;
  }
  struct value *v = b->val;
  free(v->data);
  v->data = malloc(lens[2] ? lens[2] : 1);
  memcpy(v->data, argv[2], lens[2]);
  v->len = lens[2];
  reply_str(fd, "+OK\r\n");
}

static void cmd_get(int fd, char **argv) {
  struct bucket *b = find(argv[1]);
  if (!b) {
    reply_str(fd, "$-1\r\n");
    return;
  }
  struct value *v = b->val;
  reply_bulk(fd, v->data, v->len);
}

static void cmd_del(int fd, char **argv) {
  struct bucket **p = &table[hash(argv[1])];
  for (; *p; p = &(*p)->next) {
    if (strcmp((*p)->key, argv[1]) != 0)
      continue;
    struct bucket *b = *p;
    struct value *v = b->val;
    *p = b->next;
    free(v->data);
    free(v);
    free(b->key);
    free(b);
    nkeys--;
    reply_int(fd, 1);
    return;
  }
  reply_int(fd, 0);
}

static void command(int fd, int argc, char **argv, size_t *lens) {
  ncommands++;
  if (strcasecmp(argv[0], "PING") == 0 && argc == 1)
    reply_str(fd, "+PONG\r\n");
  else if (strcasecmp(argv[0], "SET") == 0 && argc == 3)
    cmd_set(fd, argv, lens);
  else if (strcasecmp(argv[0], "GET") == 0 && argc == 2)
    cmd_get(fd, argv);
  else if (strcasecmp(argv[0], "DEL") == 0 && argc == 2)
    cmd_del(fd, argv);
  else if (strcasecmp(argv[0], "DBSIZE") == 0 && argc == 1)
    reply_int(fd, nkeys);
  else if (strcasecmp(argv[0], "INFO") == 0) {
    char buf[128];
    snprintf(buf, sizeof buf, "version:1\r\ncommands:%ld\r\n", ncommands);
    reply_bulk(fd, buf, strlen(buf));
  } else {
    char buf[96];
    snprintf(buf, sizeof buf, "-ERR unknown command '%.40s'\r\n", argv[0]);
    reply_str(fd, buf);
  }
}

/* One RESP array (*N\r\n$len\r\narg\r\n...) at the start of buf: its length
 * in bytes, 0 when incomplete, -1 when malformed. Arguments are
 * NUL-terminated in place. */
static long parse(char *buf, size_t len, int *argc, char **argv, size_t *lens) {
  char *p = buf, *end = buf + len, *nl;
  if (len < 1 || *p != '*')
    return len ? -1 : 0;
  if (!(nl = memchr(p, '\n', (size_t)(end - p))))
    return 0;
  long n = strtol(p + 1, NULL, 10);
  if (n < 1 || n > MAXARGS)
    return -1;
  p = nl + 1;
  for (long i = 0; i < n; ++i) {
    if (p >= end || !(nl = memchr(p, '\n', (size_t)(end - p))))
      return 0;
    if (*p != '$')
      return -1;
    long l = strtol(p + 1, NULL, 10);
    p = nl + 1;
    if (l < 0 || end - p < l + 2)
      return l < 0 ? -1 : 0;
    argv[i] = p;
    lens[i] = (size_t)l;
    p[l] = '\0';
    p += l + 2;
  }
  *argc = (int)n;
  return p - buf;
}

static void drop_client(struct client *c) {
  struct client **p = &clients;
  while (*p != c)
    p = &(*p)->next;
  *p = c->next;
  close(c->fd);
  free(c);
}

static void serve(struct client *c) {
  ssize_t n = read(c->fd, c->inbuf + c->inlen, sizeof c->inbuf - c->inlen);
  if (n <= 0) {
    drop_client(c);
    return;
  }
  c->inlen += (size_t)n;
  for (;;) {
    int argc;
    char *argv[MAXARGS];
    size_t lens[MAXARGS];
    long used = parse(c->inbuf, c->inlen, &argc, argv, lens);
    if (used < 0 || (used == 0 && c->inlen == sizeof c->inbuf)) {
      reply_str(c->fd, "-ERR protocol error\r\n");
      drop_client(c);
      return;
    }
    if (used == 0)
      return;
    command(c->fd, argc, argv, lens);
    memmove(c->inbuf, c->inbuf + used, c->inlen - (size_t)used);
    c->inlen -= (size_t)used;
  }
}

static void accept_client(void) {
  int fd = accept(listen_fd, NULL, NULL);
  if (fd < 0)
    return;
  struct client *c = calloc(1, sizeof *c);
  c->fd = fd;
  c->next = clients;
  clients = c;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int setup(int argc, char **argv) {
  int port = argc > 2 && strcmp(argv[1], "--port") == 0 ? atoi(argv[2]) : 6390;
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(listen_fd, 64) < 0) {
    fprintf(stderr, "kitsune-kv: port %d: %s\n", port, strerror(errno));
    return -1;
  }
  epoll_fd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  fprintf(stderr, "kitsune-kv 1: listening on port %d\n", port);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  kitsune_do_automigrate();
  if (!kitsune_is_updating() && setup(argc, argv) < 0)
    return 1;
  for (;;) {
    kitsune_update("loop");
    struct epoll_event evs[32];
    int n = epoll_wait(epoll_fd, evs, 32, -1);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == listen_fd) {
        accept_client();
        continue;
      }
      for (struct client *c = clients; c; c = c->next)
        if (c->fd == evs[i].data.fd) {
          serve(c);
          break;
        }
    }
  }
}
