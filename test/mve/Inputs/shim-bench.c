/* shim-bench.c: what the shim costs. Linked against libmvedsua, so write()
 * is libmvedsua's.
 *   1. write(2) of 1 byte to /dev/null with the shim OFF vs a direct
 *      syscall(SYS_write) in the same run (the fast path's cost)
 *   2. the same two with a follower attached: the interposed write is
 *      recorded on its fast path, the raw syscall is trapped by Syscall User
 *      Dispatch (a SIGSYS per call) and recorded; the follower replays both
 *   3. epoll_ctl(EPOLL_CTL_MOD) and epoll_wait (one ready event, no wait)
 *      with the shim OFF, then recorded by the leader (the follower maps
 *      their epoll_event.data)
 * Prints the numbers; exits non-zero only if a call fails.
 */
#include <fcntl.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int mvedsua_rt_mve_start_follower(void);

static double now(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts); /* unseen by the shim */
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double per_call(int fd, long n, int raw) {
  char c = 'x';
  double t0 = now();
  for (long i = 0; i < n; ++i)
    if ((raw ? syscall(SYS_write, fd, &c, 1) : write(fd, &c, 1)) != 1)
      exit(1);
  return (now() - t0) * 1e9 / n;
}

/* The machine is shared: alternate short batches of both and keep each
 * one's fastest batch, which is the least disturbed. */
static void compare(int fd, long n, double *shim, double *raw) {
  *shim = *raw = 1e9;
  for (long done = 0; done < n; done += 2000) {
    double a = per_call(fd, 1000, 0), b = per_call(fd, 1000, 1);
    *shim = a < *shim ? a : *shim;
    *raw = b < *raw ? b : *raw;
  }
}

static int ep, ready;

static double epoll_per_call(long n, int wait) {
  struct epoll_event ev = {.events = EPOLLIN}, out[4];
  double t0 = now();
  for (long i = 0; i < n; ++i) {
    ev.data.u64 = (unsigned long)i;
    if (wait ? epoll_wait(ep, out, 4, 0) != 1
             : epoll_ctl(ep, EPOLL_CTL_MOD, ready, &ev) != 0)
      exit(1);
  }
  return (now() - t0) * 1e9 / n;
}

static void compare_epoll(long n, double *ctl, double *wait) {
  *ctl = *wait = 1e9;
  for (long done = 0; done < n; done += 2000) {
    double a = epoll_per_call(1000, 0), b = epoll_per_call(1000, 1);
    *ctl = a < *ctl ? a : *ctl;
    *wait = b < *wait ? b : *wait;
  }
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  int fd = open("/dev/null", O_WRONLY);
  if (fd < 0)
    return 1;
  per_call(fd, n / 10, 0); /* warm up */
  double best_off, best_raw;
  compare(fd, n, &best_off, &best_raw);
  printf("off: write %.1f ns, syscall(SYS_write) %.1f ns, shim %+.1f ns\n",
         best_off, best_raw, best_off - best_raw);
  fflush(stdout);
  int p[2];
  struct epoll_event ev = {.events = EPOLLIN};
  if ((ep = epoll_create1(0)) < 0 || pipe(p) < 0 || write(p[1], "x", 1) != 1 ||
      epoll_ctl(ep, EPOLL_CTL_ADD, ready = p[0], &ev) < 0)
    return 1;
  double ctl_off, wait_off;
  compare_epoll(n / 4, &ctl_off, &wait_off);
  /* Leader and follower run the same code from here: the follower's clock
   * readings are the leader's, so it computes and prints the same lines
   * (its prints are replayed, not made). With SUD armed the raw
   * syscall(SYS_write) and the raw clock reads trap and are recorded too. */
  double led, raw;
  mvedsua_rt_mve_start_follower();
  double t0 = now();
  compare(fd, n, &led, &raw);
  double all = now() - t0;
  printf("leader: write %.1f ns (interposed, recorded), syscall(SYS_write) "
         "%.1f ns (%s, recorded); %ld calls in %.0f ms\n",
         led, raw, getenv("MVEDSUA_MVE_SUD") ? "not trapped" : "trapped",
         n, all * 1e3);
  fflush(stdout);
  double ctl_led, wait_led;
  compare_epoll(n / 4, &ctl_led, &wait_led);
  printf("epoll: epoll_ctl(MOD) %.1f ns off, %.1f ns recorded; epoll_wait "
         "(1 ready) %.1f ns off, %.1f ns recorded\n",
         ctl_off, ctl_led, wait_off, wait_led);
  fflush(stdout);
  _exit(0); /* the leader waits for its follower here, then reports */
}
