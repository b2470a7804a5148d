/* pwdb.c: the password check of memcached's sasl_defs.c
 * (sasl_server_userdb_checkpass) in a loop, for the rules of the memcached
 * port (ports/memcached/rules/, pwdb.test). Version 1 stops reading the
 * password file at the user's line, as memcached 1.6.18-1 does; -DV2 reads
 * it to its end, as the fix of CVE-2026-47784 in 1.6.18-1+deb12u1 does.
 * Each round checks one of: alice with her password, alice with a wrong
 * one, bob (the file's first line), and writes the answer. Runs until the
 * file argv[1] exists. */
#include <mvedsua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

unsigned long rounds;

static int checkpass(const char *user, const char *pass) {
  FILE *f = fopen(getenv("MEMCACHED_SASL_PWDB"), "r");
  if (!f)
    return 0;
  char buffer[256];
  int ok = 0;
  size_t unmlen = strlen(user), passlen = strlen(pass);
  for (;;) {
    memset(buffer, 0, sizeof buffer);
    if (fgets(buffer, sizeof buffer, f) == NULL)
      break;
    if (memcmp(user, buffer, unmlen) == 0 && buffer[unmlen] == ':') {
      if (memcmp(pass, buffer + unmlen + 1, passlen) == 0 &&
          buffer[unmlen + 1 + passlen] == '\n')
        ok = 1;
#ifndef V2
      break;
#endif
    }
  }
  fclose(f);
  return ok;
}

int main(int argc, char **argv) {
  static const char *const tries[3][2] = {
      {"alice@mvedsua", "secret"}, {"alice@mvedsua", "wrong"}, {"bob", "pw"}};
  for (;; ++rounds) {
    mvedsua_update_point("loop");
    const char *const *t = tries[rounds % 3];
    char line[64];
    int n = snprintf(line, sizeof line, "round %lu: %s %s\n", rounds, t[0],
                     checkpass(t[0], t[1]) ? "authenticated" : "refused");
    write(1, line, (size_t)n);
    if (argc > 1 && access(argv[1], F_OK) == 0)
      return 0;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}
