/* rules-replay.c SELF.so RULES.so|- N DELAY_MS: bench/rules-overhead.sh's
 * replay measurement. Asks for a multi-version update to itself (with the
 * compiled rules, if any), then, from the update point on, makes N writes of
 * 64 bytes to /dev/null and prints how long the loop took. The follower
 * sleeps DELAY_MS before reaching the update point (the new version's code
 * before its update point runs for real), so the leader has made every write
 * before the replay starts: the follower then replays at its own pace, and
 * the leader's report at its end ("ended Y ms after the leader") gives the
 * replay's time: Y + loop - DELAY_MS. */
#include <fcntl.h>
#include <mvedsua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ToolApi.h"

int null_fd; /* globals: the update carries them over */
long writes;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 5)
    return 2;
  if (!mvedsua_is_updating()) {
    null_fd = open("/dev/null", O_WRONLY);
    writes = atol(argv[3]);
    if (strcmp(argv[2], "-") != 0)
      mvedsua_rt_mve_set_rules(argv[2]);
    if (mvedsua_rt_request_mve_update(argv[1], NULL) != 0)
      return 1;
  }
  if (mvedsua_is_updating()) {
    long ms = atol(argv[4]);
    struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&delay, NULL);
  }
  mvedsua_update_point("start");
  char buf[64];
  memset(buf, 'x', sizeof buf);
  long long start = now_ns();
  for (long i = 0; i < writes; ++i)
    write(null_fd, buf, sizeof buf);
  fprintf(stderr, "loop_ns %lld\n", now_ns() - start);
  return 0;
}
