/*
 * ktthreads.h: Kitsune's thread API on mvedsua, as far as it exists today.
 *
 * mvedsua updates a program at an update point of the thread that runs main;
 * it cannot yet stop other threads at their update points and relaunch them
 * in the new version (Kitsune's quiescence). So:
 *   - kitsune_pthread_create starts the thread (pthread_create) and counts
 *     it while it runs; an update requested while any such thread runs is
 *     refused, saying so, instead of leaving it in the old version's code.
 *     A program can update once its worker threads have ended.
 *   - kitsune_update() in another thread is an ordinary update point that
 *     never takes an update.
 *   - the condition-wait wrappers wait (they do not quiesce).
 * A multi-version update refuses any multi-threaded process. See
 * docs/kitsune.md.
 */
#ifndef KTTHREADS_H
#define KTTHREADS_H

#include <kitsune.h>
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

int kitsune_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                           void *(*start_routine)(void *), void *arg);
int ktthreads_pthread_cond_wait(void *cond, void *mutex);
int ktthreads_pthread_cond_timedwait(void *cond, void *mutex,
                                     const void *abstime);
void ktthreads_ms_sleep(int ms);

#ifdef __cplusplus
}
#endif

#endif /* KTTHREADS_H */
