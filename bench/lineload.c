/* lineload.c: a closed-loop load for line servers (test/threads/Inputs/pool.c).
 *
 *   lineload PORT CONNECTIONS ROUNDS
 *
 * Opens CONNECTIONS connections to 127.0.0.1:PORT, one client thread each;
 * every thread sends "hit\n" and waits for the one-line answer, ROUNDS
 * times. Prints "requests N seconds S rate R errors E" (R: answers per
 * second over all connections). An answer that does not start with 'v' or a
 * connection that fails counts as an error. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, rounds;
static long errors;

static void *client(void *arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    __atomic_add_fetch(&errors, rounds, __ATOMIC_RELAXED);
    return NULL;
  }
  char buf[128];
  for (int i = 0; i < rounds; ++i) {
    if (write(fd, "hit\n", 4) != 4) {
      __atomic_add_fetch(&errors, rounds - i, __ATOMIC_RELAXED);
      break;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0 || buf[0] != 'v')
      __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
  }
  close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: lineload PORT CONNECTIONS ROUNDS\n");
    return 2;
  }
  port = atoi(argv[1]);
  int conns = atoi(argv[2]);
  rounds = atoi(argv[3]);
  pthread_t *t = calloc((size_t)conns, sizeof *t);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < conns; ++i)
    pthread_create(&t[i], NULL, client, NULL);
  for (int i = 0; i < conns; ++i)
    pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  long total = (long)conns * rounds;
  printf("requests %ld seconds %.3f rate %.0f errors %ld\n", total, s,
         (double)total / s, errors);
  return errors ? 1 : 0;
}
