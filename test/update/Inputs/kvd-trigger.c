/* Test-only addition to a kvd version (kvd has no command that updates it):
 * SIGUSR1 asks for an in-place update. Every version's constructor installs
 * its own handler, the way docs/updates.md tells programs to re-register
 * signal handlers.
 *
 * -DKVD_TEST_NEXT='"path"': the handler asks for that path. This adds no
 * state, so the version keeps kvd's own version id and a transformer built
 * for kvd (kvd-1 -> kvd-2) accepts it.
 * Otherwise: the next path of $KVD_TEST_UPDATES (colon-separated), counted
 * by a migrated global, so a chain may update to the same file twice. */
#include <errno.h>
#include <mvedsua.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef KVD_TEST_NEXT
static const char *next_target(void) { return KVD_TEST_NEXT; }
static void advance(void) {}
static void parse_targets(void) {}
#else
#define MAX_TARGETS 8
static char targets[MAX_TARGETS][1024] MVEDSUA_NO_MIGRATE;
static int n_targets MVEDSUA_NO_MIGRATE;
int trigger_next; /* migrated: the next target, across versions */

static const char *next_target(void) {
  return trigger_next < n_targets ? targets[trigger_next] : NULL;
}
static void advance(void) { trigger_next++; }
static void parse_targets(void) {
  const char *list = getenv("KVD_TEST_UPDATES");
  for (n_targets = 0; list && *list && n_targets < MAX_TARGETS; ++n_targets) {
    size_t len = strcspn(list, ":");
    if (len >= sizeof targets[0])
      len = sizeof targets[0] - 1;
    memcpy(targets[n_targets], list, len);
    targets[n_targets][len] = '\0';
    list += strcspn(list, ":");
    list += *list == ':';
  }
}
#endif

static void on_usr1(int sig) {
  int saved = errno;
  const char *target = next_target();
  if (target && mvedsua_request_update(target) == 0)
    advance();
  else if (write(2, "kvd-trigger: no update requested\n", 33) < 0)
    ;
  errno = saved;
}

__attribute__((constructor)) static void trigger_setup(void) {
  parse_targets();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
}
