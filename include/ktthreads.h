/*
 * ktthreads.h: Kitsune's thread API on mvedsua (docs/threads.md).
 *
 *   - kitsune_pthread_create is mvedsua_thread_create: the thread takes part
 *     in updates. At an update it stops at one of its update points
 *     (kitsune_update, or one of the waits below), and it is relaunched in
 *     the new version: the new version's function of the same name, with the
 *     same argument, until it reaches the point it stopped at.
 *   - the condition-wait wrappers and ktthreads_ms_sleep are update points
 *     inside the wait, named after themselves: an update wakes them.
 *   - ktthreads_update_callback: the thread's own way to be woken for an
 *     update (a byte on its pipe, a loop break).
 * A multi-version update refuses any multi-threaded process (for now). See
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
/* Called while an update waits for the calling thread to stop
 * (mvedsua_thread_on_update). */
void ktthreads_update_callback(void (*callback)(void *), void *args);

#ifdef __cplusplus
}
#endif

#endif /* KTTHREADS_H */
