/* log-fork.c: drives one shared log (libmvedsua's test API) across a real
 * fork: the parent writes, the child reads.
 *
 *   log-fork order    records of varying sizes (some larger than a chunk)
 *                     while the reader starts late: the log grows, the reader
 *                     gets every record, in order, byte for byte
 *   log-fork bound    nobody reads: appends fail once the bound is reached,
 *                     the log is abandoned and the reader sees the end at once
 *   log-fork recycle  100x the bound goes through a live reader: chunks are
 *                     reused, memory stays within the bound
 *   log-fork bench    append cost and record+read throughput
 */
#include "ToolApi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096u

static unsigned char buf[1 << 16];

static void fill(unsigned seq, unsigned len) {
  for (unsigned i = 0; i < len; ++i)
    buf[i] = (unsigned char)(seq * 31u + i * 7u);
  if (len >= 4)
    memcpy(buf, &seq, 4);
}

/* Lengths cycle through small, chunk-straddling and larger-than-a-chunk. */
static unsigned length_of(unsigned seq) {
  static const unsigned lens[] = {4, 100, 4093, 4096, 9000, 17, 12289};
  return lens[seq % 7];
}

static struct mvedsua_rt_mve_log *make(uint64_t bound, uint64_t initial) {
  char err[256];
  struct mvedsua_rt_mve_log *log =
      mvedsua_rt_mve_log_create(bound, CHUNK, initial, err, sizeof err);
  if (!log) {
    fprintf(stderr, "log-fork: %s\n", err);
    exit(2);
  }
  return log;
}

/* The reader: every record must be the one the writer made, in order. */
static int read_all(struct mvedsua_rt_mve_log *log, unsigned expect) {
  static unsigned char got[1 << 16];
  unsigned seq = 0;
  int64_t len;
  while ((len = mvedsua_rt_mve_log_next(log, got, sizeof got)) >= 0) {
    fill(seq, length_of(seq));
    if ((unsigned)len != length_of(seq) || memcmp(got, buf, (size_t)len)) {
      printf("reader: record %u differs (length %lld)\n", seq, (long long)len);
      return 1;
    }
    ++seq;
  }
  printf("reader: %u records in order\n", seq);
  return seq == expect ? 0 : 1;
}

static int wait_child(pid_t pid) {
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void print_stats(struct mvedsua_rt_mve_log *log) {
  struct mvedsua_rt_mve_log_stats s;
  mvedsua_rt_mve_log_get_stats(log, &s);
  printf("appended=%llu consumed=%llu state=%u grew=%s peak_over_chunk=%s "
         "chunks=%llu\n",
         (unsigned long long)s.records_appended,
         (unsigned long long)s.records_consumed, s.state,
         s.grow_count > 0 ? "yes" : "no",
         s.peak_backlog_bytes > CHUNK ? "yes" : "no",
         (unsigned long long)s.chunks_in_use);
}

static int order(void) {
  const unsigned n = 300;
  struct mvedsua_rt_mve_log *log = make(64u << 20, 1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(200 * 1000); /* let a backlog build up: the log must grow */
    exit(read_all(log, n));
  }
  for (unsigned seq = 0; seq < n; ++seq) {
    fill(seq, length_of(seq));
    if (mvedsua_rt_mve_log_append(log, buf, length_of(seq)) != 0)
      return printf("writer: append %u failed\n", seq), 1;
  }
  mvedsua_rt_mve_log_close_writer(log);
  int rc = wait_child(pid);
  print_stats(log);
  printf("reader exit %d\n", rc);
  return rc;
}

static int bound(void) {
  struct mvedsua_rt_mve_log *log = make(16 * CHUNK, 1);
  int go[2];
  if (pipe(go) != 0)
    return 1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    if (read(go[0], &c, 1) != 1) /* reads nothing until the bound is hit */
      exit(3);
    exit(mvedsua_rt_mve_log_next(log, buf, sizeof buf) == -1 ? 0 : 1);
  }
  unsigned seq = 0;
  fill(0, 1000);
  while (seq < 100000 && mvedsua_rt_mve_log_append(log, buf, 1000) == 0)
    ++seq;
  /* 16 chunks of 4096 hold 65 records of 1000 (+ 8 framing) bytes. */
  printf("writer: %u appends before the bound\n", seq);
  printf("writer: append after the bound: %d\n",
         mvedsua_rt_mve_log_append(log, buf, 10));
  if (write(go[1], "x", 1) != 1)
    return 1;
  int rc = wait_child(pid);
  print_stats(log);
  printf("reader saw the end at once: %s\n", rc == 0 ? "yes" : "no");
  return rc;
}

static int recycle(void) {
  const uint64_t bound_bytes = 32 * CHUNK;
  const unsigned n = 10000; /* about 100x the bound in all */
  struct mvedsua_rt_mve_log *log = make(bound_bytes, 1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    static unsigned char got[2048];
    unsigned seq = 0;
    while (mvedsua_rt_mve_log_next(log, got, sizeof got) == 1000) {
      unsigned first;
      memcpy(&first, got, 4);
      if (first != seq++)
        exit(1);
    }
    exit(seq == n ? 0 : 1);
  }
  for (unsigned seq = 0; seq < n; ++seq) {
    memcpy(buf, &seq, 4);
    /* Keep the backlog under half the bound, so the bound is never what
     * limits this run: only recycling lets 100x the bound through. */
    struct mvedsua_rt_mve_log_stats s;
    for (;;) {
      mvedsua_rt_mve_log_get_stats(log, &s);
      if (s.backlog_bytes < bound_bytes / 2)
        break;
      usleep(100);
    }
    if (mvedsua_rt_mve_log_append(log, buf, 1000) != 0)
      return printf("writer: bound reached at %u\n", seq), 1;
  }
  mvedsua_rt_mve_log_close_writer(log);
  int rc = wait_child(pid);
  struct mvedsua_rt_mve_log_stats s;
  mvedsua_rt_mve_log_get_stats(log, &s);
  printf("recycle: %llu bytes through a %llu-byte bound, chunks=%llu, "
         "reader exit %d\n",
         (unsigned long long)s.bytes_appended, (unsigned long long)bound_bytes,
         (unsigned long long)s.chunks_in_use, rc);
  return rc != 0 || s.chunks_in_use > 32 || s.bytes_appended < 100 * 32768;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench(void) {
  const unsigned n = 2000000;
  struct mvedsua_rt_mve_log *log = make(1u << 30, 4);
  memset(buf, 7, 64);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    unsigned got = 0;
    while (mvedsua_rt_mve_log_next(log, buf + 4096, 64) == 64)
      ++got;
    exit(got == n ? 0 : 1);
  }
  double t0 = now();
  for (unsigned i = 0; i < n; ++i)
    mvedsua_rt_mve_log_append(log, buf, 64);
  double t1 = now();
  mvedsua_rt_mve_log_close_writer(log);
  int rc = wait_child(pid);
  double t2 = now();
  struct mvedsua_rt_mve_log_stats s;
  mvedsua_rt_mve_log_get_stats(log, &s);
  printf("bench: append %.1f ns/record (64 B), record+read %.2f M records/s, "
         "peak backlog %llu KiB, reader exit %d\n",
         (t1 - t0) * 1e9 / n, n / (t2 - t0) / 1e6,
         (unsigned long long)(s.peak_backlog_bytes >> 10), rc);
  return rc;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "order"))
    return order();
  if (!strcmp(what, "bound"))
    return bound();
  if (!strcmp(what, "recycle"))
    return recycle();
  if (!strcmp(what, "bench"))
    return bench();
  fprintf(stderr, "usage: log-fork order|bound|recycle|bench\n");
  return 2;
}
