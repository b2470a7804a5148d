/*
 * mcd.h: the memcached-protocol cache (docs/mcd.md), version 1.
 *
 * The shape is memcached 1.6's: a main thread that listens and accepts with
 * libevent and hands each new connection, round-robin, to one of N worker
 * threads through the worker's notify pipe; every worker runs its own
 * event_base. The item table is shared by all threads under one mutex.
 *
 * All state is in globals (mcd.c, cache.c) or reachable from them through
 * typed pointers, so an update migrates it. struct conn and struct worker
 * embed their struct event (libevent's event_struct.h), and stay the same
 * type in every version: libevent's queues point into them, so they must
 * never be reallocated by a state transformation. An update keeps each
 * thread's event_base and its registrations; each thread points its events'
 * callbacks at the new version's functions (mcd.c). The embedded events are
 * MVEDSUA_OPAQUE: their links point into libevent's own memory, which the
 * update must not walk.
 */
#ifndef MCD_H
#define MCD_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "mvedsua.h"

#define MCD_VERSION "1.6.0-mcd1"
#define MCD_DEFAULT_PORT 11311
#define MCD_DEFAULT_BIND "127.0.0.1"
#define MCD_DEFAULT_THREADS 4
#define MCD_MAX_WORKERS 64
#define MCD_DEFAULT_MEMORY_MB 64
#define MCD_KEY_MAX 250                 /* memcached's KEY_MAX_LENGTH */
#define MCD_ITEM_SIZE_MAX (1024 * 1024) /* memcached's default -I 1m */
#define MCD_REALTIME_MAXDELTA (60 * 60 * 24 * 30) /* larger exptimes are absolute */

/* ---- the cache (cache.c) ------------------------------------------------ */

struct item {
  struct item *next;  /* hash chain */
  char *key MVEDSUA_ARRAY(nkey);
  size_t nkey;
  char *data MVEDSUA_ARRAY(nbytes); /* the value, without the trailing CRLF */
  size_t nbytes;
  uint32_t flags;     /* the client's opaque flags */
  int64_t exptime;    /* absolute Unix time; 0: never expires */
  int64_t time;       /* when it was last stored */
  uint64_t cas;       /* its CAS unique */
};

struct cache {
  struct item **buckets MVEDSUA_PTRARRAY(nbuckets);
  size_t nbuckets;
  size_t count;     /* items linked, expired ones included until found */
  size_t bytes;     /* memory held by the items (what -m limits) */
  int64_t flush_at; /* flush_all with a delay: items stored up to this time are dead from then on (0: none) */
};

extern struct cache cache;
extern pthread_mutex_t cache_lock;
extern uint64_t next_cas;
extern size_t mem_limit;

/* Results of the storage commands. */
enum store_result { STORE_STORED, STORE_NOT_STORED, STORE_EXISTS, STORE_NOT_FOUND, STORE_NO_MEMORY };
enum store_op { OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND, OP_CAS };
/* Results of incr/decr. */
enum delta_result { DELTA_OK, DELTA_NOT_FOUND, DELTA_NON_NUMERIC, DELTA_NO_MEMORY };

int64_t mcd_now(void);
int64_t mcd_realtime(int64_t exptime);
void cache_init(void);
/* Called with cache_lock held. */
struct item *cache_get(const char *key, size_t nkey, int64_t now);
enum store_result cache_store(enum store_op op, const char *key, size_t nkey, const char *data,
                              size_t nbytes, uint32_t flags, int64_t exptime, uint64_t cas_in,
                              int64_t now);
int cache_delete(const char *key, size_t nkey, int64_t now);
enum delta_result cache_delta(const char *key, size_t nkey, int incr, uint64_t delta, int64_t now,
                              uint64_t *result);
void cache_flush(int64_t at, int64_t now);

/* ---- statistics (mcd.c) ------------------------------------------------- */

struct stats {
  uint64_t total_connections;
  uint64_t curr_connections;
  uint64_t cmd_get, get_hits, get_misses, get_expired;
  uint64_t cmd_set, cmd_flush;
  uint64_t delete_hits, delete_misses;
  uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
  uint64_t cas_hits, cas_misses, cas_badval;
  uint64_t total_items;
  uint64_t evictions;
};
extern struct stats stats;
#define STAT_ADD(field, n) __atomic_fetch_add(&stats.field, (n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&stats.field, __ATOMIC_RELAXED)

/* ---- threads and connections (mcd.c) ------------------------------------ */

/* A message on a worker's notify pipe, written whole and read whole (every
 * message has this size, and a pipe never splits a write this small). A new
 * connection's descriptor travels in the message itself, not in a queue in
 * memory: in a multi-version update each thread replays its own calls, and
 * the worker's read then brings the descriptor with it, whatever point the
 * follower's main thread has reached. */
struct notify_msg {
  int what; /* 'c': a new connection, fd; 'u': an update's kick; 'q': stop */
  int fd;
};

struct conn;

struct worker {
  int id;
  pthread_t thread;
  struct event_base *base;
  int notify_rd, notify_wr;  /* struct notify_msg from main and the kick */
  struct event notify_ev MVEDSUA_OPAQUE; /* callback re-pointed by every version */
  struct conn *conns;        /* this worker's connections */
  size_t nconns;
};

struct conn {
  int fd;
  int worker;            /* index in workers[] */
  struct event ev MVEDSUA_OPAQUE; /* callback re-pointed by every version */
  short evflags;         /* what ev waits for: EV_READ, or EV_WRITE while output is pending */
  int closing;           /* close once the output is written */
  char *rbuf MVEDSUA_ARRAY(rsize); /* received, not yet executed */
  size_t rsize, rlen;
  char *wbuf MVEDSUA_ARRAY(wsize); /* replies not yet written */
  size_t wsize, wlen, wpos;
  size_t swallow;        /* bytes of a refused value still to discard */
  struct conn *prev, *next;
};

extern struct worker *workers MVEDSUA_ARRAY(nworkers);
extern int nworkers;
extern int64_t process_started;
extern int server_port;

/* proto.c: executes every complete command in c->rbuf, appending replies. */
void proto_process(struct conn *c);
void conn_out(struct conn *c, const char *s, size_t n);
void conn_outs(struct conn *c, const char *s); /* s, then CRLF */

#endif /* MCD_H */
