// main-kick.c: a main thread that blocks in read() of a pipe, which is no
// update point and no wait point. With -DKICK it registers a kick
// (mvedsua_thread_on_update from main) that writes a byte to that pipe:
// called when an update request arrives, it brings main to its update point.
#include <mvedsua.h>
#include <stdio.h>
#include <unistd.h>

int fds[2];
int kicks;

static void kick(void *arg) {
  (void)arg;
  kicks++;
  if (write(fds[1], "k", 1) != 1) {
    /* full pipe: main has bytes to read anyway */
  }
}

int main(void) {
  if (!mvedsua_is_updating()) {
    if (pipe(fds) != 0)
      return 1;
    printf("v%d: blocked in read\n", VERSION);
  } else {
    printf("v%d: updated, kicked %s\n", VERSION, kicks > 0 ? "yes" : "no");
  }
  fflush(stdout);
#ifdef KICK
  mvedsua_thread_on_update(kick, NULL);
#endif
  for (;;) {
    mvedsua_update_point("main");
    char c;
    if (read(fds[0], &c, 1) != 1)
      return 1;
  }
}
