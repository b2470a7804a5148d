/* sigsrv.c: a small epoll server on 127.0.0.1 that handles signals, in two
 * versions, for the signal tests of the multi-version layer
 * (test/mve-signals, docs/mve.md "Signals").
 *
 *   sigsrv.so PORT CONFIG
 *
 * Signals:
 *   SIGHUP   the handler sets a flag; the main loop re-reads CONFIG (its
 *            first line is the reply prefix) at its next turn
 *   SIGUSR2  the handler re-reads CONFIG itself (open/read/close in the
 *            handler: calls made inside a delivered handler)
 *   SIGUSR1  counted (SA_SIGINFO: the count of those sent by the sender
 *            pid the handler saw first is kept too)
 *   SIGCHLD  the handler reaps with waitpid(-1, WNOHANG) and notes the
 *            last status (SA_RESTART | SA_NOCLDSTOP)
 *   SIGTERM  the handler sets a flag; the loop ends and the program exits
 *            with status 5
 *   SIGQUIT  the handler calls exit(6) itself (the program ends inside a
 *            delivered handler)
 *   SIGALRM  counted (a one-shot timer the "alarm" command arms: the leader
 *            and the follower arm it alike, only the leader's counts)
 * Commands, one per line: "get" -> "PREFIX N" (N: gets served on this
 * connection), "usr1" -> "usr1 N", "fork" -> "forked" (a child that exits
 * with status 7 at once), "forkwait" -> "forked PID" (a child that waits in
 * pause() until its SIGTERM handler ran, then exits with status 9: a child
 * of the leader gets its signals itself), "chld" -> "reaped N status S",
 * "alarm" -> "armed", "alarms" -> "alarms N", "reloads" ->
 * "reloads N", "version" -> "v1"/"v2" (only asked once one version runs).
 * Version 2 (-DV=2) builds its replies with other code, the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <mvedsua.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

char prefix[64] = "none";
const char *config_path;
int listen_fd = -1, ep = -1;
int gets_on[1024];
int reloads;
volatile sig_atomic_t want_reload, stop, usr1_count, reaped, last_status, alarms;

static void read_config(void) {
  int fd = open(config_path, O_RDONLY);
  if (fd < 0)
    return;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return;
  buf[n] = 0;
  buf[strcspn(buf, "\n")] = 0;
  memcpy(prefix, buf, strlen(buf) + 1);
  reloads++;
}

static void on_hup(int sig) { (void)sig; want_reload = 1; }
static void on_usr2(int sig) {
  int saved = errno;
  (void)sig;
  read_config();
  errno = saved;
}
static void on_usr1(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  if (si->si_signo == SIGUSR1)
    usr1_count++;
}
static void on_chld(int sig) {
  int saved = errno, st;
  (void)sig;
  while (waitpid(-1, &st, WNOHANG) > 0) {
    reaped++;
    last_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  errno = saved;
}
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_alrm(int sig) { (void)sig; alarms++; }
static void on_quit(int sig) {
  (void)sig;
  fprintf(stderr, "sigsrv: quits after %d reloads, %d SIGUSR1\n", reloads,
          (int)usr1_count);
  exit(6);
}

static void handle(int sig, void (*h)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void install_handlers(void) {
  handle(SIGHUP, on_hup, SA_RESTART);
  handle(SIGUSR2, on_usr2, SA_RESTART);
  handle(SIGCHLD, on_chld, SA_RESTART | SA_NOCLDSTOP);
  handle(SIGTERM, on_term, 0);
  handle(SIGALRM, on_alrm, SA_RESTART);
  handle(SIGQUIT, on_quit, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGHUP); /* the program's sa_mask */
  sigaction(SIGUSR1, &sa, NULL);
}

static int reply(int fd, const char *line) {
#if V == 2
  char out[128];
  size_t n = strlen(line);
  memcpy(out, line, n);
  out[n] = '\n';
  return write(fd, out, n + 1) == (ssize_t)(n + 1) ? 0 : -1;
#else
  char out[128];
  int n = snprintf(out, sizeof out, "%s\n", line);
  return write(fd, out, (size_t)n) == n ? 0 : -1;
#endif
}

static void serve(int fd) {
  char buf[256], line[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    return;
  }
  buf[n] = 0;
  for (char *cmd = strtok(buf, "\n"); cmd; cmd = strtok(NULL, "\n")) {
    if (!strcmp(cmd, "get"))
      snprintf(line, sizeof line, "%s %d", prefix,
               fd < 1024 ? ++gets_on[fd] : 0);
    else if (!strcmp(cmd, "usr1"))
      snprintf(line, sizeof line, "usr1 %d", (int)usr1_count);
    else if (!strcmp(cmd, "reloads"))
      snprintf(line, sizeof line, "reloads %d", reloads);
    else if (!strcmp(cmd, "fork")) {
      pid_t p = fork();
      if (p == 0)
        _exit(7);
      snprintf(line, sizeof line, p > 0 ? "forked" : "fork failed");
    } else if (!strcmp(cmd, "forkwait")) {
      pid_t p = fork();
      if (p == 0) {
        while (!stop)
          pause();
        _exit(9);
      }
      snprintf(line, sizeof line, "forked %d", (int)p);
    } else if (!strcmp(cmd, "alarm")) {
      struct itimerval it = {{0, 0}, {0, 30000}};
      setitimer(ITIMER_REAL, &it, NULL);
      snprintf(line, sizeof line, "armed");
    } else if (!strcmp(cmd, "alarms"))
      snprintf(line, sizeof line, "alarms %d", (int)alarms);
    else if (!strcmp(cmd, "chld"))
      snprintf(line, sizeof line, "reaped %d status %d", (int)reaped,
               (int)last_status);
    else if (!strcmp(cmd, "version"))
      snprintf(line, sizeof line, "v%d", V);
    else
      snprintf(line, sizeof line, "unknown");
    if (reply(fd, line) != 0)
      return;
  }
}

static int setup(const char *port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((unsigned short)atoi(port)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(listen_fd, 64) != 0)
    return -1;
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  read_config();
  return 0;
}

int main(int argc, char **argv) {
  install_handlers(); /* always: a new version installs its own */
  if (!mvedsua_is_updating()) {
    if (argc < 3)
      return 2;
    config_path = argv[2];
    if (setup(argv[1]) != 0) {
      perror("sigsrv: listen");
      return 1;
    }
  }
  while (!stop) {
    mvedsua_update_point("loop");
    if (want_reload) {
      want_reload = 0;
      read_config();
    }
    struct epoll_event evs[32];
    int n = epoll_wait(ep, evs, 32, -1);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == listen_fd) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
          continue;
        if (fd < 1024)
          gets_on[fd] = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      } else {
        serve(evs[i].data.fd);
      }
    }
  }
  fprintf(stderr, "sigsrv: stops after %d reloads, %d SIGUSR1, %d reaped\n",
          reloads, (int)usr1_count, (int)reaped);
  return 5;
}
