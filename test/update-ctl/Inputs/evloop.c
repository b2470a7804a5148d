/* A small event-loop server for the update-ctl tests, in the shape of kvd:
 * one epoll loop that waits with no timeout (-1), its update point at the
 * top. Build it with -DVERSION=N; -DDELAY_MS=N makes a new version sleep that
 * long in main before reaching its update point (a version slow to come up);
 * -DWIDE_COUNT changes the type of the migrated counter (no transformer);
 * -DCRASH_ON_UPDATE makes a new version abort before its update point.
 *
 *   evloop PORT          serve TCP on 127.0.0.1:PORT; print "ready" on stdout
 *   evloop PORT --read   the same, but block in read(0) between update points
 *                        instead of epoll_wait (a call SA_RESTART restarts)
 *
 * Each request line gets one reply line:
 *   get           "vVERSION count=N wakeups=W" (N: requests served by every
 *                 version, W: epoll_waits interrupted by a signal)
 *   self PATH     mvedsua_request_update(PATH): "requested" or the error
 */
#include <errno.h>
#include <mvedsua.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION 1
#endif
#ifndef DELAY_MS
#define DELAY_MS 0
#endif

#ifdef WIDE_COUNT
long long count;
#else
int count;
#endif
int wakeups;
int listen_fd = -1, epoll_fd = -1;

static void sleep_ms(long ms) { /* the whole time, signals or not */
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR)
    ;
}

static void answer(int fd, char *line) {
  char out[512];
  line[strcspn(line, "\r\n")] = '\0';
  if (strncmp(line, "self ", 5) == 0) {
    int r = mvedsua_request_update(line + 5);
    snprintf(out, sizeof out, "%s\n", r == 0 ? "requested" : strerror(errno));
  } else {
    count++;
    snprintf(out, sizeof out, "v%d count=%lld wakeups=%d\n", VERSION,
             (long long)count, wakeups);
  }
  if (write(fd, out, strlen(out)) < 0)
    perror("evloop: write");
}

static void on_event(int fd) {
  if (fd == listen_fd) {
    int c = accept(listen_fd, NULL, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
    if (c >= 0)
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c, &ev);
    return;
  }
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) {
    close(fd);
    return;
  }
  buf[n] = '\0';
  answer(fd, buf);
}

static int start(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 16)) {
    perror("evloop: bind");
    return -1;
  }
  epoll_fd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
  return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
}

int main(int argc, char **argv) {
  if (argc < 2)
    return 2;
  int block_in_read = argc > 2 && strcmp(argv[2], "--read") == 0;
  if (!mvedsua_is_updating()) {
    if (start(atoi(argv[1])) < 0)
      return 1;
    printf("ready\n");
    fflush(stdout);
  } else if (DELAY_MS > 0) {
    sleep_ms(DELAY_MS);
  }
#ifdef CRASH_ON_UPDATE
  if (mvedsua_is_updating())
    abort();
#endif
  for (;;) {
    mvedsua_update_point("loop");
    if (block_in_read) { /* restarted after the wake signal (SA_RESTART) */
      char c;
      if (read(0, &c, 1) <= 0)
        return 0;
      continue;
    }
    struct epoll_event evs[16];
    int n = epoll_wait(epoll_fd, evs, 16, -1);
    if (n < 0 && errno == EINTR)
      wakeups++;
    for (int i = 0; i < n; ++i)
      on_event(evs[i].data.fd);
  }
}
