/* waits.c: waiting for signals while a follower of the same version
 * replays (mvedsua_rt_mve_start_follower). The signals come from the
 * program's own kill(getpid(), ...), a recorded call: the leader's kernel
 * delivers them, the follower's kill is replayed and sends nothing, so the
 * follower only gets them as the leader's control records.
 *   sigsuspend  SIGUSR1 blocked and sent: sigsuspend with an empty mask
 *               lets it through; the handler runs, sigsuspend returns EINTR
 *   pause       SIGUSR2 sent while unblocked (noted by the runtime): pause
 *               returns at once after the handler ran, as it would natively
 *   sigwaitinfo SIGHUP blocked and sent: taken with its siginfo (si_pid)
 *   nested      SIGUSR1 sent from the SIGUSR2 handler, whose sa_mask blocks
 *               SIGUSR1: it runs after the SIGUSR2 handler, then pause
 *               returns
 *   queued      three sigqueue()s of a blocked real-time signal, values 1 2
 *               3: sigsuspend lets them through, the handler sees each
 *               value, in order (real-time signals queue); a sleep first
 *               gives the follower time to replay the three sigqueue()s,
 *               which must send nothing (else the leader gets six)
 *   siglongjmp  the SIGALRM handler leaves with siglongjmp (out of the
 *               runtime's delivery, in both processes), the mask saved by
 *               sigsetjmp comes back
 * Each step writes a line; the follower's writes are compared with the
 * leader's.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int mvedsua_rt_mve_start_follower(void);

static volatile sig_atomic_t usr1, usr2, order[8], n_order;
static sigjmp_buf env;

static void on_alrm(int sig) { siglongjmp(env, sig); }
static volatile sig_atomic_t rt_values[8], n_rt;
static void on_rt(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  rt_values[n_rt++ & 7] = si->si_value.sival_int;
}

static void on_usr1(int sig) { (void)sig; usr1++; order[n_order++ & 7] = 1; }
static void on_usr2(int sig) {
  (void)sig;
  usr2++;
  order[n_order++ & 7] = 2;
  if (usr2 == 2)
    kill(getpid(), SIGUSR1); /* blocked here by this handler's sa_mask */
}

static void say(const char *what, long r, int err) {
  char line[160];
  int n = snprintf(line, sizeof line, "%s: r %ld errno %s usr1 %d usr2 %d\n",
                   what, r, r < 0 ? strerror(err) : "-", (int)usr1, (int)usr2);
  if (write(1, line, (size_t)n) != n)
    _exit(1);
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_usr2;
  sigaddset(&sa.sa_mask, SIGUSR1);
  sigaction(SIGUSR2, &sa, NULL);
  if (mvedsua_rt_mve_start_follower() < 0) {
    perror("waits: start_follower");
    return 3;
  }

  sigset_t usr1_set, empty, hup;
  sigemptyset(&empty);
  sigemptyset(&usr1_set);
  sigaddset(&usr1_set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1_set, NULL);
  kill(getpid(), SIGUSR1);
  int r = sigsuspend(&empty);
  say("sigsuspend", r, errno);
  sigprocmask(SIG_UNBLOCK, &usr1_set, NULL);

  kill(getpid(), SIGUSR2);
  r = pause();
  say("pause", r, errno);

  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  sigprocmask(SIG_BLOCK, &hup, NULL);
  kill(getpid(), SIGHUP);
  siginfo_t si;
  r = sigwaitinfo(&hup, &si);
  say(r == SIGHUP && si.si_pid == getpid() ? "sigwaitinfo SIGHUP from self"
                                           : "sigwaitinfo wrong",
      r, errno);

  kill(getpid(), SIGUSR2);
  r = pause();
  say("nested", r, errno);
  struct sigaction rt;
  memset(&rt, 0, sizeof rt);
  rt.sa_sigaction = on_rt;
  rt.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 1, &rt, NULL);
  sigset_t rt_set;
  sigemptyset(&rt_set);
  sigaddset(&rt_set, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &rt_set, NULL);
  for (int v = 1; v <= 3; ++v)
    sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = v});
  usleep(200 * 1000);
  r = sigsuspend(&empty);
  sigprocmask(SIG_UNBLOCK, &rt_set, NULL);
  char vals[64];
  int k = snprintf(vals, sizeof vals, "queued:");
  for (int i = 0; i < n_rt; ++i)
    k += snprintf(vals + k, sizeof vals - k, " %d", (int)rt_values[i]);
  say(vals, r, errno);

  sa.sa_handler = on_alrm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  sigset_t after;
  sigprocmask(SIG_BLOCK, &hup, NULL);
  r = sigsetjmp(env, 1);
  if (r == 0) {
    kill(getpid(), SIGALRM);
    pause();
    say("siglongjmp did not happen", 0, 0);
  }
  sigprocmask(SIG_BLOCK, NULL, &after);
  say(sigismember(&after, SIGALRM) || !sigismember(&after, SIGHUP)
          ? "siglongjmp: wrong mask"
          : "siglongjmp: mask restored",
      r, 0);
  printf("order:");
  for (int i = 0; i < n_order; ++i)
    printf(" %d", (int)order[i]);
  printf("\n");
  return 0;
}
