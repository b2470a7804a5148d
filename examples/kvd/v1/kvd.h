/*
 * kvd: a small single-threaded, epoll-based key-value server speaking a
 * subset of RESP2 (enough for redis-cli and redis-benchmark), written to be
 * updated live by mvedsua.
 *
 * Version 1. Rules that keep it updatable (see docs/kvd.md):
 *   - every piece of server state is a global declared here and defined in
 *     kvd.c, reachable through typed pointers only (no void *);
 *   - dynamically sized pointer arrays carry MVEDSUA_PTRARRAY(len), byte
 *     buffers MVEDSUA_ARRAY(len), so the state transformer can walk them;
 *   - state globals are not `static`: a static is keyed by its file path,
 *     and each version lives in its own directory (v1/, v2/, ...);
 *   - the kernel only ever sees file descriptors (epoll data is the fd, not
 *     a pointer), because heap objects may move when a type changes.
 */
#ifndef KVD_H
#define KVD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "mvedsua.h"

#define KVD_VERSION 1
/* A patch release of a version: code changes only, no state changes (the
 * demo's first live update is kvd-1 -> kvd-1.1). */
#ifndef KVD_PATCHLEVEL
#define KVD_PATCHLEVEL 0
#endif
#define KVD_DEFAULT_PORT 6380
#define KVD_DEFAULT_BIND "127.0.0.1"

/* ---- the key space: a chained hash table ------------------------------- */

/* Keys and values are binary-safe byte strings; nothing relies on a
 * terminating NUL, so a transformer may copy exactly `len` bytes. */
struct entry {
  char *key MVEDSUA_ARRAY(keylen);
  size_t keylen;
  char *val MVEDSUA_ARRAY(vallen);
  size_t vallen;
  struct entry *next;
};

struct table {
  struct entry **buckets MVEDSUA_PTRARRAY(nbuckets);
  size_t nbuckets; /* a power of two */
  size_t count;
};

void table_init(struct table *t);
void table_free(struct table *t);
struct entry *table_find(const struct table *t, const char *key, size_t keylen);
/* Inserts or replaces; returns 0, or -1 when out of memory. */
int table_set(struct table *t, const char *key, size_t keylen, const char *val,
              size_t vallen);
/* Returns 1 when the key existed and was removed, 0 otherwise. */
int table_del(struct table *t, const char *key, size_t keylen);
void table_clear(struct table *t);

/* ---- clients ------------------------------------------------------------ */

/* A connected client. Everything a half-received or half-sent exchange needs
 * lives here (never in locals of the event loop), so the loop is quiescent at
 * its update point even while bytes are buffered. */
struct client {
  int fd;
  char *inbuf MVEDSUA_ARRAY(incap); /* received, not yet executed */
  size_t inlen;
  size_t incap;
  char *outbuf MVEDSUA_ARRAY(outcap); /* replies, [outpos, outlen) unsent */
  size_t outpos;
  size_t outlen;
  size_t outcap;
  int want_write;         /* EPOLLOUT is registered for fd */
  int close_after_write;  /* QUIT or protocol error: close once flushed */
  struct client *prev;    /* the list of all clients */
  struct client *next;
};

/* ---- server state (defined in kvd.c) ----------------------------------- */

extern struct table db;
extern int listen_fd;
extern int epoll_fd;
extern struct client *clients; /* head of a doubly-linked list */
extern size_t nclients;
extern uint64_t commands_processed;
extern uint64_t connections_accepted;
extern int server_port;
extern volatile sig_atomic_t stop_requested;

/* ---- replies (resp.c) --------------------------------------------------- */

void reply_raw(struct client *c, const char *buf, size_t len);
void reply_status(struct client *c, const char *status); /* +status */
void reply_error(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* -ERR ..., fmt excludes "ERR " */
void reply_int(struct client *c, long long value);
void reply_bulk(struct client *c, const char *buf, size_t len);
void reply_nil(struct client *c);
void reply_array_len(struct client *c, size_t n);

/* ---- requests (resp.c) -------------------------------------------------- */

struct arg {
  const char *ptr; /* points into the client's input buffer */
  size_t len;
};

#define KVD_INLINE_ARGS 16

/* One parsed command. Arguments point into the client's input buffer and are
 * only valid until the buffer is compacted. */
struct request {
  size_t argc;
  struct arg *argv; /* inline_args, or heap memory for long commands */
  struct arg inline_args[KVD_INLINE_ARGS];
};

enum parse_result {
  PARSE_OK,         /* a request was parsed; *consumed bytes used */
  PARSE_INCOMPLETE, /* need more bytes */
  PARSE_EMPTY,      /* an empty inline line; *consumed bytes skipped */
  PARSE_ERROR,      /* protocol error; message in the error buffer */
};

enum parse_result parse_request(const char *buf, size_t len,
                                struct request *req, size_t *consumed,
                                char *error, size_t errorlen);
void request_release(struct request *req);

/* ---- commands (commands.c) ---------------------------------------------- */

/* Executes one request, appending its reply to the client's output. */
void execute_request(struct client *c, const struct request *req);

#endif /* KVD_H */
