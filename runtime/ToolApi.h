/*
 * ToolApi.h: what mvedsua's own tools (mvedsua-run) call in libmvedsua.
 * Not installed and not for programs: programs use <mvedsua.h>.
 */
#ifndef MVEDSUA_RUNTIME_TOOL_API_H
#define MVEDSUA_RUNTIME_TOOL_API_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*mvedsua_rt_main_fn)(int, char **, char **);

/* A version loaded with mvedsua_rt_load_version. */
struct mvedsua_rt_loaded {
  void *handle;            /* from dlopen */
  mvedsua_rt_main_fn main; /* the object's own main */
  int version;             /* its registry, or -1 when it registered none */
};

/* Loads the shared object `path` (RTLD_NOW | RTLD_LOCAL) and finds its main
 * and registry. Returns 0, or -1 with a one-line message naming `path` in
 * `err`. */
int mvedsua_rt_load_version(const char *path, struct mvedsua_rt_loaded *out,
                            char *err, size_t err_size);

/* Runs the loaded version's main; the runtime now counts it as running. */
int mvedsua_rt_run_main(const struct mvedsua_rt_loaded *v, int argc,
                        char **argv);

/* The signal the supervisor sends the program to make it stop at its next
 * update point (it sets __mvedsua_update_pending). */
#define MVEDSUA_WAKE_SIGNAL (SIGRTMIN + 6)
/* The signals that end a process as a crash: the follower's and the
 * leader's reports catch them, and the supervisor hands the service to the
 * partner of a leader they ended (docs/mve.md). */
#define MVEDSUA_FATAL_SIGNALS SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP

/* In the program's process, before loading: `fd` is the program's end of the
 * channel to the supervisor; installs the handler of MVEDSUA_WAKE_SIGNAL.
 * mvedsua_rt_run_main then announces the version on it. 0, or -1 (errno). */
int mvedsua_rt_attach_supervisor(int fd);

/* The last in-place update of this process (docs/updates.md). */
enum mvedsua_rt_update_state {
  MVEDSUA_RT_UPDATE_NONE = 0,        /* no request was taken yet */
  MVEDSUA_RT_UPDATE_IN_PROGRESS = 1, /* new version runs towards its point */
  MVEDSUA_RT_UPDATE_FINISHED = 2,
  MVEDSUA_RT_UPDATE_FAILED = 3,      /* refused or failed; old version runs */
};

struct mvedsua_rt_update_status {
  int state;               /* enum mvedsua_rt_update_state */
  int source;              /* 0: the program asked, 1: the supervisor */
  char outcome[16];        /* "none", "in-progress", "finished", "failed" */
  char reason[1024];       /* why it failed; "" otherwise */
  char point[128];         /* the update point it was taken at */
  char from_path[4096], to_path[4096]; /* as requested / as started */
  char from_id[17], to_id[17];         /* "" when unknown */
  uint64_t requested_us;   /* wall clock (us since the epoch): request taken */
  uint64_t completed_us;   /* finished or failed; 0 while in progress */
  uint64_t pause_us;       /* request taken -> new version at its point */
  uint64_t entries, bytes; /* data entries written, their bytes */
  uint64_t transformed;    /* of those, written by a state transformer */
  uint64_t remapped;       /* pointers rewritten to the new version */
  uint64_t heap_objects;   /* heap objects the pointer walk went through */
  uint64_t locals;         /* migrated locals saved from the old frames */
  uint64_t load_us;        /* of the pause: loading the new version */
  uint64_t transfer_us;    /* of the pause: planning and writing the state */
};

/* Copies the status of the last update into *out; the state is NONE when no
 * update was attempted. */
void mvedsua_rt_last_update(struct mvedsua_rt_update_status *out);

/* The version's id (see docs/runtime.md) as 16 hex digits and 0 terminator. */
void mvedsua_rt_version_id(int version, char out[17]);

/* The version's registry as text or JSON. */
void mvedsua_rt_dump_state(int version, FILE *out, int json);

#ifdef __cplusplus
}
#endif

/* ---- The multi-version layer (runtime/mve, docs/mve.md) ---- */
#ifdef __cplusplus
extern "C" {
#endif

/* The process's role. OFF: no follower exists, the shim only forwards. */
enum mvedsua_rt_mve_role {
  MVEDSUA_MVE_OFF = 0,
  MVEDSUA_MVE_LEADER = 1,
  MVEDSUA_MVE_FOLLOWER = 2,
};
int mvedsua_rt_mve_role(void);

/* The mask of MVEDSUA_WAIT_* a --wait-points list ("epoll_wait,accept",
 * "all") names, or -1 with the first unknown word in bad (Threads.cpp). */
int mvedsua_rt_parse_wait_points(const char *list, char *bad, size_t size);

/* Forks a follower of the calling (single-threaded) process: returns
 * MVEDSUA_MVE_LEADER in the parent, which records from now on, and
 * MVEDSUA_MVE_FOLLOWER in the child, which replays; -1 with errno EBUSY (a
 * follower exists), ENOTSUP (several threads) or ENOMEM (no log). */
int mvedsua_rt_mve_start_follower(void);

/* Leader: the follower's divergence report (lines of text), "" if none. */
const char *mvedsua_rt_mve_divergence(void);

/* Exit statuses of a follower that stops by itself. */
#define MVEDSUA_MVE_EXIT_DIVERGED 86    /* report in the shared area */
#define MVEDSUA_MVE_EXIT_LEADER_GONE 87 /* the leader vanished mid-log */
#define MVEDSUA_MVE_EXIT_ABANDONED 88   /* the log reached its bound */
#define MVEDSUA_MVE_EXIT_UPDATE_FAILED 89 /* the update failed in the follower */

/* A multi-version update (docs/mve.md): at the next update point the process
 * forks; the child applies the update and follows, the parent keeps the old
 * version and leads. 0 in a field means the default: timeout_ms
 * $MVEDSUA_UPDATE_TIMEOUT_MS or 30000 (to finish the update, then to keep
 * consuming records), the log's bound and chunk $MVEDSUA_MVE_LOG_BOUND /
 * $MVEDSUA_MVE_LOG_CHUNK (1 GiB, 1 MiB). */
struct mvedsua_rt_mve_options {
  uint64_t timeout_ms;
  uint64_t log_bound;
  uint64_t log_chunk;
  /* A follower rolled back for a reason that may not recur (divergence,
   * crash, time limit, the log's bound; not a failed update nor a requested
   * rollback) is forked again, at most `retries` times, `retry_delay_ms`
   * (0: 500, as in MVEDSUa) after the rollback. */
  uint64_t retries;
  uint64_t retry_delay_ms;
};
/* 0, or -1 with errno: EBUSY (a follower exists, or called in a follower),
 * and RequestUpdate's (EINVAL, ENOTCONN, ENOENT). Options may be null. */
int mvedsua_rt_request_mve_update(const char *path,
                                  const struct mvedsua_rt_mve_options *options);

/* The leader's view of the last multi-version update. */
struct mvedsua_rt_mve_status {
  char stage[24];    /* "single-leader", "updating", "catching-up",
                        "outdated-leader" */
  int leader_pid;
  int follower_pid;  /* 0 when there is none */
  uint64_t backlog_bytes, backlog_records, peak_backlog_bytes;
  uint64_t records_appended, records_consumed;
  char outcome[24];  /* "none", "in-progress", "rolled-back",
                        "followed-to-exit", "not-started" */
  char reason[6144]; /* how the follower ended: the divergence report, the
                        signal and backtrace, the failed update's reason */
  char to_path[4096];
  uint64_t started_us, updated_us, caught_up_us, ended_us; /* wall clock */
  /* Follower threads that waited for their place in the order of calls
     across threads past the time limit and went on unordered. */
  uint64_t order_timeouts;
};
void mvedsua_rt_mve_status(struct mvedsua_rt_mve_status *out);
/* Ends the follower of a multi-version update at any stage (the leader goes
 * on alone; reported as rolled back, with `why`). 0, or -1 with ESRCH when
 * there is no follower to roll back. */
int mvedsua_rt_mve_rollback(const char *why);
/* The compiled rules (mvedsua-rules compile; docs/rules.md) the follower of
 * the next multi-version update applies; null or "" for none. */
void mvedsua_rt_mve_set_rules(const char *so_path);
/* The follower of the next multi-version update learns the noise: each
 * difference in what it sends is appended to `path` and the replay goes on
 * with the leader's result (docs/rules.md); null or "" for none. */
void mvedsua_rt_mve_set_learn(const char *path);
/* Promotion (the new version leads, the old one follows it: stage
 * updated-leader) and finish (the old version ends), taken at the leader's
 * next update point. 0, or -1 with ESRCH when no update is under way. */
int mvedsua_rt_mve_promote(void);
int mvedsua_rt_mve_finish(void);

/* Test-only access to one shared log (runtime/mve/Log.h): one writer, one
 * reader, across a fork. */
struct mvedsua_rt_mve_log;
struct mvedsua_rt_mve_log_stats {
  uint64_t records_appended, records_consumed, bytes_appended;
  uint64_t backlog_bytes, peak_backlog_bytes, chunks_in_use, file_bytes;
  uint64_t grow_count;
  uint32_t state; /* 0 active, 1 writer done, 2 abandoned, 3 reader gone */
};
struct mvedsua_rt_mve_log *mvedsua_rt_mve_log_create(uint64_t bound,
                                                     uint64_t chunk_size,
                                                     uint64_t initial_chunks,
                                                     char *err, size_t size);
/* 0, or -1 when the log is no longer active (bound reached, reader gone). */
int mvedsua_rt_mve_log_append(struct mvedsua_rt_mve_log *log, const void *data,
                              size_t len);
void mvedsua_rt_mve_log_close_writer(struct mvedsua_rt_mve_log *log);
/* The next record's length (its first `cap` bytes copied to buf), -1 at the
 * end (writer done and drained, or abandoned). */
int64_t mvedsua_rt_mve_log_next(struct mvedsua_rt_mve_log *log, void *buf,
                                size_t cap);
void mvedsua_rt_mve_log_get_stats(struct mvedsua_rt_mve_log *log,
                              struct mvedsua_rt_mve_log_stats *out);

#ifdef __cplusplus
}
#endif

/* ---- Checking an update without applying it (runtime/UpdateCheck.cpp) ---- */
#ifdef __cplusplus
extern "C" {
#endif

/* Loads the version files `from_path` (the running version) and `to_path`
 * into this process (their constructors run: call it in a scratch process)
 * and plans the in-place update's state transfer read-only, over their
 * initial state. 0: it would be accepted (`out` says how the state moves);
 * 1: it would be refused (`out` says why); -1: `from_path` cannot be loaded
 * as a version with a registry (`out` says why). */
int mvedsua_rt_check_update(const char *from_path, const char *to_path,
                            char *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MVEDSUA_RUNTIME_TOOL_API_H */
