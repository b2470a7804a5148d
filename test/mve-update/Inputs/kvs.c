/* kvs.c: a small epoll key-value server on 127.0.0.1, in several versions
 * for the multi-version update tests (test/mve-update).
 *
 *   kvs.so PORT        serve 127.0.0.1:PORT until a client sends "shutdown"
 *
 * Commands, one per line: "set K V" -> "ok", "get K" -> "value V" or
 * "missing", "del K" -> "deleted" / "missing", "ping" -> "pong", "update" ->
 * asks for a multi-version update to $KVS_NEXT ("update: requested" or
 * "update: ERROR"), "shutdown".
 *
 * Versions (-DKVS=...):
 *   1  v1
 *   2  v1b: the same replies from different code (a table of handlers)
 *   3  v2-diverge: "ping" answered "pong v2"
 *   4  v2-crash: "del" dereferences a null pointer
 *   5  v2-refused: 'served' changes type (int -> long), no transformer
 *   6  v2-hang: spins without an update point when started by an update
 *   7  v2-stall: "del" spins without syscalls (stops consuming the log)
 *   8  v2-flaky: answers "ping" like v2-diverge only if, when it was started
 *      by an update, the file $KVS_FLAKY did not exist yet (it creates it):
 *      a divergence that does not happen on a second try
 *
 * "quit" answers "bye" and closes the connection (the server closes
 * first: a follower's inherited copy must not keep it open); "drop" answers
 * "dropping" and ends the connection by dup2'ing /dev/null over it.
 * With $KVS_THREAD set, v1 starts an idle thread at startup (a follower
 * cannot be forked then).
 * With $KVS_IGNORE_SIGCHLD set, v1 sets SIGCHLD to SIG_IGN at startup (the
 * kernel then reaps children itself, the runtime's follower included).
 * "rollback" asks for the follower to be rolled back ("rollback: requested",
 * or "rollback: ERROR").
 * "reap" forks a child that exits with status 7, then waits with
 * waitpid(-1, ..., 0) (blocking) until no child is left: "reaped N status S"
 * (N children reaped, S the last one's exit status). Under mvedsua-run the
 * answer is "reaped 1 status 7" while a follower exists too (it is the
 * supervisor's child); a follower that were the program's child would be
 * waited for as well (blocking until it ends).
 * "mvstatus" answers the leader's mvedsua_rt_mve_status (only meaningful
 * once no follower exists: a follower's own answer would differ).
 */
#include <errno.h>
#include <fcntl.h>
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

/* libmvedsua's multi-version request and status (built with
 * -I<src>/runtime); weak, as a program must also run without mvedsua. */
#include "ToolApi.h"
#pragma weak mvedsua_rt_request_mve_update
#pragma weak mvedsua_rt_mve_status
#pragma weak mvedsua_rt_mve_rollback

#define MAXFD 1024
#define NKEYS 256

struct conn {
  char in[512];
  int len;
};
struct conn conns[MAXFD];
struct entry {
  char key[32];
  char value[64];
  int used;
} store[NKEYS];
int listen_fd = -1, ep = -1;
#if KVS == 8
int flaky;
#endif
#if KVS == 5
long served;
#else
int served;
#endif

static void on_abort(void) {
  static const char msg[] = "kvs: on_abort ran in the leader\n";
  write(2, msg, sizeof msg - 1);
}

static struct entry *find(const char *key) {
  for (int i = 0; i < NKEYS; ++i)
    if (store[i].used && strcmp(store[i].key, key) == 0)
      return &store[i];
  return NULL;
}

static void reply(int fd, const char *text) {
  char out[160];
  int n = snprintf(out, sizeof out, "%s\n", text);
  if (send(fd, out, (size_t)n, MSG_NOSIGNAL) != n)
    perror("kvs: send");
}

static void do_set(int fd, char *arg) {
  char *value = strchr(arg, ' ');
  if (!value)
    return reply(fd, "error");
  *value++ = 0;
  struct entry *e = find(arg);
  for (int i = 0; !e && i < NKEYS; ++i)
    if (!store[i].used)
      e = &store[i];
  if (!e)
    return reply(fd, "full");
  snprintf(e->key, sizeof e->key, "%s", arg);
  snprintf(e->value, sizeof e->value, "%s", value);
  e->used = 1;
  reply(fd, "ok");
}

static void do_get(int fd, char *arg) {
  struct entry *e = find(arg);
  char out[128];
  snprintf(out, sizeof out, "value %s", e ? e->value : "");
  reply(fd, e ? out : "missing");
}

static void do_del(int fd, char *arg) {
  struct entry *e = find(arg);
#if KVS == 7
  for (volatile unsigned long i = 0;; ++i)
    ;
#endif
#if KVS == 4
  static struct entry *volatile nowhere; /* null, unknown to the compiler */
  if (!e)
    e = nowhere; /* the bug: a missing key is dereferenced */
  e->used = 0;
  reply(fd, "deleted");
  return;
#endif
  if (e)
    e->used = 0;
  reply(fd, e ? "deleted" : "missing");
}

static void do_ping(int fd, char *arg) {
  (void)arg;
#if KVS == 8
  if (flaky)
    return reply(fd, "pong v2");
#endif
  reply(fd, KVS == 3 ? "pong v2" : "pong");
}

static void do_status(int fd, char *arg) {
  (void)arg;
  struct mvedsua_rt_mve_status st;
  if (!mvedsua_rt_mve_status)
    return reply(fd, "mvstatus: unavailable");
  mvedsua_rt_mve_status(&st);
  char out[160];
  snprintf(out, sizeof out, "mvstatus: stage %s outcome %s follower %d",
           st.stage, st.outcome, st.follower_pid);
  reply(fd, out);
}

static void do_rollback(int fd, char *arg) {
  (void)arg;
  char out[96];
  if (!mvedsua_rt_mve_rollback)
    return reply(fd, "rollback: unavailable");
  if (mvedsua_rt_mve_rollback("the client asked") != 0)
    snprintf(out, sizeof out, "rollback: %s", strerror(errno));
  else
    snprintf(out, sizeof out, "rollback: requested");
  reply(fd, out);
}

static void do_reap(int fd, char *arg) {
  (void)arg;
  char out[96];
  pid_t child = fork();
  if (child < 0)
    return reply(fd, "reap: fork failed");
  if (child == 0)
    _exit(7);
  int n = 0, st = 0, last = -1;
  while (waitpid(-1, &st, 0) > 0) {
    n++;
    last = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  snprintf(out, sizeof out, "reaped %d status %d", n, last);
  reply(fd, out);
}

static void do_update(int fd, char *arg) {
  (void)arg;
  const char *next = getenv("KVS_NEXT");
  struct mvedsua_rt_mve_options o = {0};
  o.retries = getenv("KVS_RETRIES") ? strtoul(getenv("KVS_RETRIES"), 0, 10) : 0;
  if (!mvedsua_rt_request_mve_update || !next)
    return reply(fd, "update: unavailable");
  if (mvedsua_rt_request_mve_update(next, &o) != 0) {
    char out[96];
    snprintf(out, sizeof out, "update: %s", strerror(errno));
    return reply(fd, out);
  }
  reply(fd, "update: requested");
}

#if KVS == 2
/* v1b: a table instead of v1's chain of comparisons. */
static const struct {
  const char *name;
  void (*run)(int, char *);
} commands[] = {{"set ", do_set}, {"get ", do_get}, {"del ", do_del},
                {"ping", do_ping}, {"update", do_update},
                {"mvstatus", do_status}, {"rollback", do_rollback},
                {"reap", do_reap}};

static void command(int fd, char *line) {
  served++;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i) {
    size_t n = strlen(commands[i].name);
    if (strncmp(line, commands[i].name, n) == 0)
      return commands[i].run(fd, line + n);
  }
  reply(fd, "error");
}
#else
static void command(int fd, char *line) {
  served++;
  if (strncmp(line, "set ", 4) == 0)
    do_set(fd, line + 4);
  else if (strncmp(line, "get ", 4) == 0)
    do_get(fd, line + 4);
  else if (strncmp(line, "del ", 4) == 0)
    do_del(fd, line + 4);
  else if (strcmp(line, "ping") == 0)
    do_ping(fd, line);
  else if (strcmp(line, "update") == 0)
    do_update(fd, line);
  else if (strcmp(line, "mvstatus") == 0)
    do_status(fd, line);
  else if (strcmp(line, "rollback") == 0)
    do_rollback(fd, line);
  else if (strcmp(line, "reap") == 0)
    do_reap(fd, line);
  else
    reply(fd, "error");
}
#endif

/* Runs each whole line of the connection; 1 when a client said shutdown. */
static int input(int fd) {
  struct conn *c = &conns[fd];
  ssize_t n = recv(fd, c->in + c->len, sizeof c->in - 1 - (size_t)c->len, 0);
  if (n <= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    c->len = 0;
    return 0;
  }
  c->len += (int)n;
  char *start = c->in, *nl;
  while ((nl = memchr(start, '\n', (size_t)(c->in + c->len - start)))) {
    *nl = 0;
    if (strcmp(start, "shutdown") == 0)
      return 1;
    if (strcmp(start, "drop") == 0) {
      int null = open("/dev/null", O_RDONLY);
      reply(fd, "dropping");
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      dup2(null, fd); /* the socket's last reference in the leader */
      close(null);
      c->len = 0;
      return 0;
    }
    if (strcmp(start, "quit") == 0) {
      reply(fd, "bye");
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      close(fd);
      c->len = 0;
      return 0;
    }
    command(fd, start);
    start = nl + 1;
  }
  c->len -= (int)(start - c->in);
  memmove(c->in, start, (size_t)c->len);
  return 0;
}

static void accept_one(void) {
  int fd = accept(listen_fd, NULL, NULL);
  if (fd < 0 || fd >= MAXFD) {
    if (fd >= 0)
      close(fd);
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void *idle_thread(void *arg) {
  for (;;)
    pause();
  return arg;
}

static int setup(const char *port) {
  pthread_t idle;
  if (getenv("KVS_THREAD"))
    pthread_create(&idle, NULL, idle_thread, NULL);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((unsigned short)atoi(port)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(listen_fd, 128) != 0)
    return -1;
  if (getenv("KVS_IGNORE_SIGCHLD"))
    signal(SIGCHLD, SIG_IGN);
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  return 0;
}

int main(int argc, char **argv) {
  mvedsua_on_abort(on_abort);
#if KVS == 8
  /* While updating the follower's calls are its own (not compared). */
  if (mvedsua_is_updating() && getenv("KVS_FLAKY") &&
      access(getenv("KVS_FLAKY"), F_OK) != 0) {
    flaky = 1;
    close(open(getenv("KVS_FLAKY"), O_WRONLY | O_CREAT, 0644));
  }
#endif
  if (KVS == 6 && mvedsua_is_updating())
    for (volatile unsigned long i = 0;; ++i) /* never reaches "loop" */
      ;
  if (!mvedsua_is_updating() && (argc < 2 || setup(argv[1]) != 0)) {
    perror("kvs: setup");
    return 1;
  }
  for (;;) {
    mvedsua_update_point("loop");
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == listen_fd)
        accept_one();
      else if (input(evs[i].data.fd)) {
        printf("kvs: served %ld commands\n", (long)served);
        return 0;
      }
    }
  }
}
