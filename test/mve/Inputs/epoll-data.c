/* epoll-data.c: a follower whose epoll_event.data differs from the leader's
 * (the test hook forks a follower of the same program; each process
 * registers its own values, as two versions would).
 *
 *   epoll-data.so basic      registrations before the fork (inherited, the
 *                            same values in both), ADD and MOD after it with
 *                            values of each process's own, DEL; then the
 *                            registered descriptor is dup'ed and closed (the
 *                            kernel keeps the registration: its events keep
 *                            coming with the data given): every event
 *                            checked against the values this process gave
 *   epoll-data.so ambiguous  as basic, but before the dup a second
 *                            descriptor is registered with the leader's
 *                            value of the first and another value in the
 *                            follower: the leader's value no longer says
 *                            which (a divergence)
 *   epoll-data.so dupep      as basic, then an epoll instance created after
 *                            the fork gets a registration through a dup of
 *                            its descriptor: the map knows it under the
 *                            dup's number only, and the instance's event
 *                            maps to nothing (a divergence)
 *
 * Each event is printed as "wait N: KIND ok" or "wait N: KIND WRONG 0x...":
 * a follower given the leader's values prints other bytes (a divergence).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int mvedsua_rt_mve_start_follower(void) __attribute__((weak));
int mvedsua_rt_mve_role(void) __attribute__((weak));
#define FOLLOWER 2

static int is_follower(void) {
  return mvedsua_rt_mve_role && mvedsua_rt_mve_role() == FOLLOWER;
}

static int ep;
static uint64_t want_old, want_new; /* this process's values */

static void wait_once(int n) {
  struct epoll_event evs[8];
  int k = epoll_wait(ep, evs, 8, 1000);
  char line[256];
  int len = 0;
  for (int i = 0; i < k; ++i) {
    uint64_t d = evs[i].data.u64;
    const char *kind = d == want_old ? "inherited" : d == want_new ? "mine" : NULL;
    if (kind)
      len += snprintf(line + len, sizeof line - len, "wait %d: %s ok\n", n, kind);
    else
      len += snprintf(line + len, sizeof line - len, "wait %d: WRONG 0x%llx\n",
                      n, (unsigned long long)d);
  }
  if (k <= 0)
    len = snprintf(line, sizeof line, "wait %d: %d events\n", n, k);
  write(1, line, (size_t)len);
}

int main(int argc, char **argv) {
  int ambiguous = argc > 1 && strcmp(argv[1], "ambiguous") == 0;
  int dupep = argc > 1 && strcmp(argv[1], "dupep") == 0;
  int before[2], after[2];
  ep = epoll_create1(0);
  pipe(before);
  want_old = 0xabc0000 + (unsigned)before[0];
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = want_old};
  epoll_ctl(ep, EPOLL_CTL_ADD, before[0], &ev);
  write(before[1], "x", 1);
  if (!mvedsua_rt_mve_start_follower || mvedsua_rt_mve_start_follower() < 0) {
    perror("epoll-data: start_follower");
    return 3;
  }
  /* From here on each process keys its own registrations its own way. */
  uint64_t base = is_follower() ? 0x7f0000001000ull : 0x5500000002000ull;
  pipe(after);
  want_new = base + (unsigned)after[0];
  ev.events = EPOLLIN;
  ev.data.u64 = want_new;
  epoll_ctl(ep, EPOLL_CTL_ADD, after[0], &ev);
  write(after[1], "y", 1);
  wait_once(1); /* both: inherited and mine */
  want_new += 0x10;
  ev.data.u64 = want_new;
  epoll_ctl(ep, EPOLL_CTL_MOD, after[0], &ev);
  wait_once(2);
  epoll_ctl(ep, EPOLL_CTL_DEL, before[0], NULL);
  wait_once(3); /* only mine */
  if (ambiguous) {
    int third[2];
    pipe(third);
    ev.data.u64 = is_follower() ? want_new + 0x100 : want_new;
    epoll_ctl(ep, EPOLL_CTL_ADD, third[0], &ev);
    write(third[1], "z", 1);
    wait_once(4);
  }
  if (dupep) {
    int ep2 = epoll_create1(0), alias = dup(ep2), q[2];
    pipe(q);
    ev.data.u64 = want_new = base + 0x900;
    epoll_ctl(alias, EPOLL_CTL_ADD, q[0], &ev);
    write(q[1], "w", 1);
    int saved = ep;
    ep = ep2;
    wait_once(4);
    ep = saved;
  }
  int copy = dup(after[0]);
  close(after[0]); /* the registration lives on through the copy */
  wait_once(5);
  close(copy);
  printf("epoll-data: done\n");
  return 0;
}
