/* The baseline of kvd-xform-bench.py: N objects of kvd-1's struct entry
 * (40 bytes) become N objects of kvd-2's (48 bytes), copied as plain bytes:
 * one malloc and memcpy per object (what a transformer must at least do),
 * and one memcpy of all of them at once (memory bandwidth). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  char **old = malloc(n * sizeof *old), **fresh = malloc(n * sizeof *fresh);
  for (size_t i = 0; i < n; i++) {
    old[i] = malloc(40);
    memset(old[i], (int)i, 40);
  }
  double t = now();
  for (size_t i = 0; i < n; i++) {
    fresh[i] = calloc(1, 48);
    memcpy(fresh[i], old[i], 40);
  }
  double per_object = now() - t;
  char *flat_old = malloc(n * 40), *flat_new = malloc(n * 48);
  memset(flat_old, 1, n * 40);
  memset(flat_new, 0, n * 48);
  t = now();
  memcpy(flat_new, flat_old, n * 40);
  double flat = now() - t;
  printf("plain copy: %zu objects in %.3f s (calloc+memcpy each: %.2f M objects/s), "
         "%.1f MB in one memcpy: %.4f s\n",
         n, per_object, n / per_object / 1e6, n * 40 / 1e6, flat);
  return fresh[n - 1][0] + flat_new[n];
}
