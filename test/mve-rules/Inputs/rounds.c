/* rounds.c: a loop whose versions differ in ways each rule form covers
 * (semantics.test). Each round writes "round N" and, in version 1, asks
 * getpid(). Version 2 (-DV2): opens and closes /dev/null once when it first
 * runs a round (begin =>), no longer asks getpid() (a left call dropped),
 * and asks getppid() N % 3 times after its write (scall *). Runs until the
 * file argv[1] exists. */
#include <fcntl.h>
#include <mvedsua.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

unsigned long rounds; /* globals: the update carries them over */
#ifdef V2
int started; /* new in version 2: 0 in the follower after the update */
#endif

int main(int argc, char **argv) {
  for (;; ++rounds) {
    mvedsua_update_point("loop");
#ifdef V2
    if (!started) {
      int fd = open("/dev/null", O_WRONLY);
      close(fd);
      started = 1;
    }
#endif
    char line[64];
    int n = snprintf(line, sizeof line, "round %lu\n", rounds);
    write(1, line, (size_t)n);
#ifdef V2
    for (unsigned long i = 0; i < rounds % 3; ++i)
      getppid();
#else
    getpid();
#endif
    if (argc > 1 && access(argv[1], F_OK) == 0)
      return 0;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}
