/*
 * upbench: the cost of an update point, built as an updatable version (-fPIC,
 * MvedsuaPass) and run under mvedsua-run, so the flag is reached through the
 * GOT exactly as in a real server. Prints one JSON object.
 *
 * Each measurement is the best of several runs of the same loop with and
 * without an update point, in the same process: the difference is the cost of
 * the check itself.
 */
#include <mvedsua.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BARRIER() __asm__ volatile("" ::: "memory")

/* One check per call: GOT load + flag load + branch. */
__attribute__((noinline)) void call_with_point(void) {
  mvedsua_update_point("bench");
  BARRIER();
}
__attribute__((noinline)) void call_without_point(void) { BARRIER(); }

/* A little work per iteration, like an event-loop turn that parses a short
 * request: hash 64 bytes and touch the buffer. */
static inline uint64_t turn(uint8_t *buf, uint64_t h) {
  for (int i = 0; i < 64; i++)
    h = (h ^ buf[i]) * 0x100000001b3ULL;
  buf[h & 63] ^= (uint8_t)h;
  return h;
}
__attribute__((noinline)) uint64_t loop_with_point(uint8_t *buf, long n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (long i = 0; i < n; i++) {
    mvedsua_update_point("loop");
    h = turn(buf, h);
  }
  return h;
}
__attribute__((noinline)) uint64_t loop_without_point(uint8_t *buf, long n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (long i = 0; i < n; i++)
    h = turn(buf, h);
  return h;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef void (*call_fn)(void);
static double best_calls(call_fn f, long n, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
      f();
    double t = (now_ns() - t0) / n;
    if (t < best)
      best = t;
  }
  return best;
}

typedef uint64_t (*loop_fn)(uint8_t *, long);
static uint64_t sink;
static double best_loop(loop_fn f, uint8_t *buf, long n, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns();
    sink += f(buf, n);
    double t = (now_ns() - t0) / n;
    if (t < best)
      best = t;
  }
  return best;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000000L;
  int reps = argc > 2 ? atoi(argv[2]) : 7;
  uint8_t buf[64];
  memset(buf, 7, sizeof buf);

  double with = best_calls(call_with_point, n, reps);
  double without = best_calls(call_without_point, n, reps);
  double lwith = best_loop(loop_with_point, buf, n / 20, reps);
  double lwithout = best_loop(loop_without_point, buf, n / 20, reps);
  printf("{\"iterations\": %ld, \"repetitions\": %d,\n"
         " \"call_with_point_ns\": %.3f, \"call_without_point_ns\": %.3f,\n"
         " \"check_ns\": %.3f,\n"
         " \"loop_turn_with_point_ns\": %.3f, \"loop_turn_without_point_ns\": %.3f,\n"
         " \"loop_overhead_ratio\": %.4f, \"sink\": %llu}\n",
         n, reps, with, without, with - without, lwith, lwithout,
         lwith / lwithout, (unsigned long long)(sink & 1));
  return 0;
}
