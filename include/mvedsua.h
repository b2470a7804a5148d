/*
 * mvedsua.h: the program-facing API of mvedsua.
 *
 * A program includes this header, marks where updates may take effect with
 * mvedsua_update_point(), and annotates the state that needs it. Built with
 * the MvedsuaPass plugin (-fpass-plugin=MvedsuaPass.so) each update point
 * becomes an inline check of one runtime flag and the program's state is
 * registered for migration. Built without the plugin, and even without
 * libmvedsua, the program still compiles and runs as a normal program: every
 * entry point below falls back to a no-op when the runtime is absent.
 *
 * Annotation placement (one place each, see docs/annotations.md):
 *   int counter MVEDSUA_NO_MIGRATE = 0;          after the declarator
 *   struct s { char *buf MVEDSUA_PTRARRAY(len); size_t len; };
 *   void *handle MVEDSUA_OPAQUE;
 *   int tbl[4]; int *cur MVEDSUA_ARRAY(4);
 *   MVEDSUA_MIGRATE_LOCAL(var);                   a statement after var's declaration
 *   void helper(void) MVEDSUA_NO_INSTRUMENT;      on a function declaration
 */
#ifndef MVEDSUA_H
#define MVEDSUA_H

#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Entry points of libmvedsua. They are weak so that a program linked without
 * the runtime still links; the inline functions below check for them. */
void __mvedsua_rt_update_point(const char *name) __attribute__((weak));
int __mvedsua_rt_is_updating(void) __attribute__((weak));
int __mvedsua_rt_is_updating_from(const char *name) __attribute__((weak));
int __mvedsua_rt_request_update(const char *path) __attribute__((weak));
void __mvedsua_rt_on_abort(void (*callback)(void)) __attribute__((weak));
void __mvedsua_rt_migrate_local(const char *name, void *addr,
                                unsigned long size) __attribute__((weak));
int __mvedsua_rt_thread_create(pthread_t *thread, const pthread_attr_t *attr,
                               void *(*start)(void *), void *arg)
    __attribute__((weak));
int __mvedsua_rt_cond_wait(const char *point, pthread_cond_t *cond,
                           pthread_mutex_t *mutex,
                           const struct timespec *abstime)
    __attribute__((weak));
void __mvedsua_rt_wait_points(int mask) __attribute__((weak));
long __mvedsua_rt_shared_value(long value) __attribute__((weak));
void __mvedsua_rt_promote_after_children(void) __attribute__((weak));
void __mvedsua_rt_thread_on_update(void (*kick)(void *), void *arg)
    __attribute__((weak));

/* An update may take effect here. With the plugin this call is replaced by a
 * load of one flag and a branch; the name must be a string literal. */
static inline void mvedsua_update_point(const char *name) {
  if (__mvedsua_rt_update_point)
    __mvedsua_rt_update_point(name);
}

/* True in a new version until it reaches the update point it came from. */
static inline int mvedsua_is_updating(void) {
  return __mvedsua_rt_is_updating ? __mvedsua_rt_is_updating() : 0;
}

/* True in a new version that is updating from the update point `name`. */
static inline int mvedsua_is_updating_from(const char *name) {
  return __mvedsua_rt_is_updating_from ? __mvedsua_rt_is_updating_from(name)
                                       : 0;
}

/* Ask for an update to the version at `new_version_path`; it takes effect at
 * the next update point. Returns 0 when the request was accepted, -1 with
 * errno set otherwise (ENOSYS when the program runs without mvedsua). */
int *__errno_location(void);
static inline int mvedsua_request_update(const char *new_version_path) {
  if (__mvedsua_rt_request_update)
    return __mvedsua_rt_request_update(new_version_path);
  *__errno_location() = 38 /* ENOSYS */;
  return -1;
}

/* Leader side: `callback` runs when an update the program forked for was
 * aborted for it (the leader keeps running the old version). */
static inline void mvedsua_on_abort(void (*callback)(void)) {
  if (__mvedsua_rt_on_abort)
    __mvedsua_rt_on_abort(callback);
}

/* Marks a local for migration. A statement placed after the declaration of
 * `var`, in both versions: in the new version, while it is updating, `var`
 * receives the old version's value. The plugin registers the local (key
 * "file/function#var") with its type from debug info. */
static inline void __mvedsua_migrate_local(const char *name, void *addr,
                                           unsigned long size) {
  if (__mvedsua_rt_migrate_local)
    __mvedsua_rt_migrate_local(name, addr, size);
}
#define MVEDSUA_MIGRATE_LOCAL(var)                                             \
  __mvedsua_migrate_local(#var, (void *)&(var), sizeof(var))

/* ---- threads ------------------------------------------------------------
 * A thread takes part in updates when it is started here. At an update every
 * such thread must reach one of its update points (quiescence); the update
 * then relaunches it in the new version: the new version's function of the
 * same name as `start` runs with the same `arg` (remapped when it pointed
 * into the old version's globals), while mvedsua_is_updating() is true for
 * it, until it reaches the update point it stopped at. Its migrated locals
 * follow it. Same pthread_t, same thread id when the update runs in place;
 * in a multi-version update's follower a new thread, whose pthread_t the
 * runtime writes where this call wrote the first one.
 * Without the runtime this is pthread_create. See docs/threads.md. */
static inline int mvedsua_thread_create(pthread_t *thread,
                                        const pthread_attr_t *attr,
                                        void *(*start)(void *), void *arg) {
  if (__mvedsua_rt_thread_create)
    return __mvedsua_rt_thread_create(thread, attr, start, arg);
  return pthread_create(thread, attr, start, arg);
}

/* pthread_cond_wait that is also an update point named `point`: when an
 * update needs this thread it stops inside the wait, with `mutex` released
 * (as the wait has it). If the update does not happen the call returns 0 (a
 * spurious wakeup, which a cond-wait loop already allows) holding `mutex`.
 * The timed form returns ETIMEDOUT at `abstime` like pthread's. */
static inline int mvedsua_cond_wait_at(const char *point,
                                       pthread_cond_t *cond,
                                       pthread_mutex_t *mutex) {
  if (__mvedsua_rt_cond_wait)
    return __mvedsua_rt_cond_wait(point, cond, mutex, 0);
  return pthread_cond_wait(cond, mutex);
}
static inline int mvedsua_cond_timedwait_at(const char *point,
                                            pthread_cond_t *cond,
                                            pthread_mutex_t *mutex,
                                            const struct timespec *abstime) {
  if (__mvedsua_rt_cond_wait)
    return __mvedsua_rt_cond_wait(point, cond, mutex, abstime);
  return pthread_cond_timedwait(cond, mutex, abstime);
}

/* Called by a thread started above: while an update waits for this thread
 * to stop, the runtime calls kick(arg) from the thread that drives the
 * update, again every 10 ms until it stopped. It should make the thread
 * reach one of its update points: event_base_loopbreak() on the thread's
 * libevent base, a byte on a pipe it reads... (Kitsune's
 * ktthreads_update_callback). One per thread; null removes it.
 * Called by the thread that runs main: kick(arg) is called when an update
 * request arrives, in a signal handler on that thread (so it must be
 * async-signal-safe: write a byte to a pipe its event loop watches); it
 * makes a loop that blocks where no update point is reach one. */
static inline void mvedsua_thread_on_update(void (*kick)(void *), void *arg) {
  if (__mvedsua_rt_thread_on_update)
    __mvedsua_rt_thread_on_update(kick, arg);
}

/* Blocking event waits that act as update points, for event loops that live
 * inside a library (libevent's event_base_loop): in the threads started
 * above and in main, a wait of a kind in `mask` is an update point named
 * after the call ("epoll_wait", "poll", "select", "accept"), taken before it
 * blocks and again when an update interrupts it (the program never sees that
 * interruption). Also set from the command line: mvedsua-run --wait-points
 * epoll_wait,poll,select,accept (or MVEDSUA_WAIT_POINTS). */
#define MVEDSUA_WAIT_EPOLL 1  /* epoll_wait, epoll_pwait */
#define MVEDSUA_WAIT_POLL 2   /* poll, ppoll */
#define MVEDSUA_WAIT_SELECT 4 /* select, pselect */
#define MVEDSUA_WAIT_ACCEPT 8 /* accept, accept4 on a blocking socket */
static inline void mvedsua_wait_points(int mask) {
  if (__mvedsua_rt_wait_points)
    __mvedsua_rt_wait_points(mask);
}

/* A value read from memory that another thread writes (a count of the jobs
 * a background thread has not done yet), when the system calls that follow
 * depend on it: in a multi-version update the threads of the leader and of
 * the follower run at their own paces, so each would read its own. Returns
 * `value`, except in a follower, which gets what its leader's thread read at
 * the same point (recorded in that thread's log, docs/threads.md). */
static inline long mvedsua_shared_value(long value) {
  if (__mvedsua_rt_shared_value)
    return __mvedsua_rt_shared_value(value);
  return value;
}

/* For a program that waits for its child processes to learn how they ended
 * (redis' BGSAVE): only the process that forked a child can wait for it, so
 * the promotion of a multi-version update waits until the program has reaped
 * every child of the old version (and fails, naming one that outlives the
 * update's time limit). Without it, children are left to run: the new
 * version's waitpid answers ECHILD for them (a forking server's sessions). */
static inline void mvedsua_promote_after_children(void) {
  if (__mvedsua_rt_promote_after_children)
    __mvedsua_rt_promote_after_children();
}

/* Type and variable annotations. Each is a btf_decl_tag, which reaches debug
 * info on globals, statics, locals and fields, where the plugin and xfgen read
 * it. The plugin refuses a module without full debug info (-g), so an
 * annotation can never be dropped silently. */
#if defined(__clang__) && __clang_major__ >= 14
#define MVEDSUA_TAG_(text) __attribute__((btf_decl_tag(text)))
#else
#define MVEDSUA_TAG_(text)
#endif

/* On a global or static: start fresh (initialiser) in the new version. */
#define MVEDSUA_NO_MIGRATE MVEDSUA_TAG_("mvedsua:no_migrate")
/* On a field or variable: copy as bytes, never look inside. */
#define MVEDSUA_OPAQUE MVEDSUA_TAG_("mvedsua:opaque")
/* On a pointer field or variable: it points to n elements; n is an integer
 * constant or the name of a sibling integer field. PTRARRAY: n pointers,
 * each followed; ARRAY: n elements of the pointee type. */
#define MVEDSUA_PTRARRAY(n) MVEDSUA_TAG_("mvedsua:ptrarray:" #n)
#define MVEDSUA_ARRAY(n) MVEDSUA_TAG_("mvedsua:array:" #n)
/* On a function: the plugin leaves it alone (no update-point lowering). */
#define MVEDSUA_NO_INSTRUMENT                                                  \
  __attribute__((annotate("mvedsua:no_instrument")))

#ifdef __cplusplus
}
#endif

#endif /* MVEDSUA_H */
