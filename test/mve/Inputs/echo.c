/* echo.c: a small server loop run under mvedsua-run that forks a follower of
 * itself part-way (the test hook of the multi-version layer).
 *
 *   echo.so pair N    N rounds over a socketpair: send a line, receive it,
 *                     compute, print the result on stdout
 *   echo.so tcp FILE  an epoll echo server on 127.0.0.1 (port written to
 *                     FILE): "echo: LINE" per line until a client says quit
 *
 * Environment:
 *   MVEDSUA_TEST_FOLLOW_AT=K      start the follower at round/event K
 *   MVEDSUA_TEST_DIVERGE_AT=K     the follower (only) answers round K in
 *                                 upper case: a divergence to detect
 *   MVEDSUA_TEST_RAW_PID=1        print the pid from a raw syscall, which
 *                                 the shim cannot see: a divergence
 *   MVEDSUA_TEST_RUSAGE=1         also print the process's CPU time
 *                                 (getrusage), which each process has its own
 *   MVEDSUA_TEST_SLOW_FOLLOWER=1  the follower (only) computes for a long
 *                                 while after following (no syscalls): the
 *                                 leader runs ahead
 *   MVEDSUA_TEST_FORK=1           fork a child that exits 7 at each round
 *                                 and wait for it
 *   MVEDSUA_TEST_STDIO=FILE       also fprintf each result to FILE
 *   MVEDSUA_TEST_STDIO_DIVERGE=1  the follower (only) writes "X" before
 *                                 each line of FILE: a divergence seen only
 *                                 through glibc's internal write
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* libmvedsua's test entry points (runtime/ToolApi.h); weak so the program
 * also runs where they are absent. */
int mvedsua_rt_mve_start_follower(void) __attribute__((weak));
int mvedsua_rt_mve_role(void) __attribute__((weak));
#define FOLLOWER 2

static long env_num(const char *name) {
  const char *s = getenv(name);
  return s && *s ? atol(s) : -1;
}

static void maybe_follow(long round) {
  if (round != env_num("MVEDSUA_TEST_FOLLOW_AT") ||
      !mvedsua_rt_mve_start_follower)
    return;
  if (mvedsua_rt_mve_start_follower() < 0) {
    perror("echo: start_follower");
    exit(3);
  }
}

static int is_follower(void) {
  return mvedsua_rt_mve_role && mvedsua_rt_mve_role() == FOLLOWER;
}

/* Work without syscalls, long enough for the leader to fill a small log. */
static void slow_follower(void) {
  static volatile unsigned long sink;
  if (!is_follower() || !getenv("MVEDSUA_TEST_SLOW_FOLLOWER"))
    return;
  for (unsigned long i = 0; i < 20000000000ul; ++i)
    sink += i;
}

/* A child of the leader is not followed: the follower takes the leader's
 * child pid and wait status from the log instead of forking. */
static void fork_child(void) {
  if (!getenv("MVEDSUA_TEST_FORK"))
    return;
  pid_t pid = fork();
  if (pid == 0)
    _exit(7);
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 7)
    exit(8);
}

/* The reply to a line; the follower changes it at MVEDSUA_TEST_DIVERGE_AT. */
static int reply(char *out, size_t size, const char *line, long round) {
  int upper = is_follower() && round == env_num("MVEDSUA_TEST_DIVERGE_AT");
  return snprintf(out, size, "%s: %s", upper ? "ECHO" : "echo", line);
}

static void write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, buf, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      exit(4);
    buf += k, n -= (size_t)k;
  }
}

static int pair_loop(long rounds) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return 1;
  FILE *stdio = getenv("MVEDSUA_TEST_STDIO") ? fopen(getenv("MVEDSUA_TEST_STDIO"), "a") : NULL;
  for (long i = 0; i < rounds; ++i) {
    maybe_follow(i);
    if (i == env_num("MVEDSUA_TEST_FOLLOW_AT"))
      slow_follower();
    fork_child();
    char line[64], got[64], out[160];
    int n = snprintf(line, sizeof line, "round %ld", i);
    write_all(sv[0], line, (size_t)n);
    ssize_t k = read(sv[1], got, sizeof got - 1);
    if (k != n)
      return 5;
    got[k] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long pid = env_num("MVEDSUA_TEST_RAW_PID") == 1 ? syscall(SYS_getpid) : getpid();
    int m = reply(out, sizeof out, got, i);
    if (env_num("MVEDSUA_TEST_RUSAGE") == 1) { // this process's CPU time
      struct rusage ru;
      getrusage(RUSAGE_SELF, &ru);
      m += snprintf(out + m, sizeof out - m, " cpu_us=%ld",
                    (long)((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec));
    }
    m += snprintf(out + m, sizeof out - m, " pid=%ld t=%lld.%09ld\n", pid,
                  (long long)ts.tv_sec, ts.tv_nsec);
    write_all(1, out, (size_t)m);
    if (stdio)
      fprintf(stdio, "%s%s",
              is_follower() && getenv("MVEDSUA_TEST_STDIO_DIVERGE") ? "X" : "",
              out);
  }
  if (stdio)
    fclose(stdio);
  return 0;
}

static int listen_on_loopback(const char *port_file) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(fd, 8) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    exit(6);
  FILE *f = fopen(port_file, "w");
  fprintf(f, "%d\n", ntohs(a.sin_port));
  fclose(f);
  return fd;
}

/* One client's data: echo each complete line; 1 when the client said quit. */
static int serve(int fd, long *round) {
  char buf[4096], out[4200];
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return -1;
  buf[n] = 0;
  for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
    *nl = 0;
    if (!strcmp(line, "quit"))
      return 1;
    maybe_follow(*round);
    int m = reply(out, sizeof out, line, (*round)++);
    out[m++] = '\n';
    if (send(fd, out, (size_t)m, 0) != m)
      return -1;
  }
  return 0;
}

static int tcp_loop(const char *port_file) {
  int lfd = listen_on_loopback(port_file);
  int ep = epoll_create1(0);
  struct epoll_event ev = {EPOLLIN, {.fd = lfd}};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  long round = 0;
  for (;;) {
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c = accept(lfd, NULL, NULL);
        struct epoll_event cev = {EPOLLIN, {.fd = c}};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        continue;
      }
      int r = serve(fd, &round);
      if (r != 0)
        close(fd);
      if (r == 1) {
        printf("served %ld lines\n", round);
        return 0;
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "pair"))
    return pair_loop(atol(argv[2]));
  if (argc == 3 && !strcmp(argv[1], "tcp"))
    return tcp_loop(argv[2]);
  fprintf(stderr, "usage: echo.so pair N | tcp PORTFILE\n");
  return 2;
}
