/* noise.c: a program whose output differs between two copies of itself: each
 * round writes the time stamp counter (read with rdtsc: no system call, so
 * never replayed) and a steady counter, until the file argv[1] exists. A
 * follower of the same version diverges on the first tick; learning the
 * noise notes each tick and goes on. */
#include <mvedsua.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

unsigned long rounds; /* a global: the update carries it over */

int main(int argc, char **argv) {
  for (;; ++rounds) {
    mvedsua_update_point("loop");
    char line[96];
    int n = snprintf(line, sizeof line, "tick %llu\n",
                     (unsigned long long)__builtin_ia32_rdtsc());
    write(1, line, (size_t)n);
    n = snprintf(line, sizeof line, "steady %lu\n", rounds);
    write(1, line, (size_t)n);
    if (argc > 1 && access(argv[1], F_OK) == 0)
      return 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}
