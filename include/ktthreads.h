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
 *   - kitsune_threads_* and kitsune_thread_*: in the new version's
 *     _kitsune_prestart_xform or _kitsune_mainupdate_xform, the threads the
 *     update relaunches, edited (below).
 * Multi-version updates work with these threads too (docs/threads.md). See
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

/* ---- the threads an update relaunches, edited from a hook ----------------
 * In the new version's _kitsune_prestart_xform (before its main) or
 * _kitsune_mainupdate_xform (when its main reached the update point it came
 * from, before the other threads start), the program may walk the threads
 * the update will relaunch and edit them; the edits apply when the hook
 * returns. Elsewhere these report an error and do nothing. */
typedef void *kt_pthread_fn(void *);
typedef struct {
  void *arg;              /* in the new version (remapped), editable */
  kt_pthread_fn *start_fun; /* the new version's function, editable */
  const char *update_pt;  /* the update point it stopped at */
  pthread_attr_t attr;    /* unused: a relaunch keeps its thread */
} ktthread_info;

/* Starts the walk; kitsune_threads_next gives each thread in creation order,
 * then NULL. */
void kitsune_threads_reset(void);
ktthread_info *kitsune_threads_next(void);
/* The thread kitsune_threads_next gave last is not relaunched: it ends. */
void kitsune_thread_remove(void);
/* A new thread, started with the relaunched ones, that runs
 * start_fun(arg) as if it had stopped at update_pt: the update waits until
 * it reaches that point, and kitsune_is_updating_from(update_pt) is true in
 * it until then. attr may be NULL. */
void kitsune_thread_add(void *arg, kt_pthread_fn *start_fun,
                        const char *update_pt, pthread_attr_t *attr);

#ifdef __cplusplus
}
#endif

#endif /* KTTHREADS_H */
