/*
 * Loops without update points: compiled with and without MvedsuaPass, their
 * machine code must be identical (bench/update-point/compare-loops.sh).
 * They only touch their arguments, like most of a server's inner loops.
 */
#include <stddef.h>
#include <stdint.h>

uint64_t sum_array(const uint32_t *a, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += a[i];
  return s;
}

uint64_t hash_string(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  while (*s)
    h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
  return h;
}

void insertion_sort(int *a, size_t n) {
  for (size_t i = 1; i < n; i++) {
    int v = a[i];
    size_t j = i;
    for (; j > 0 && a[j - 1] > v; j--)
      a[j] = a[j - 1];
    a[j] = v;
  }
}

size_t count_lines(const char *buf, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += buf[i] == '\n';
  return n;
}
