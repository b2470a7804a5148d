/*
 * proto.c: memcached's text protocol.
 *
 * proto_process() executes every complete command buffered in a
 * connection's input and appends the replies to its output; a storage
 * command whose value has not fully arrived stays buffered until it has.
 * Replies and error strings are memcached 1.6's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcd.h"

#define MAX_LINE 8192                /* a command line longer than this is refused, */
#define MAX_GET_LINE (4 * 1024 * 1024) /* except a retrieval command's */
#define MAX_TOKENS 24                /* words in any other command */

struct token {
  const char *s;
  size_t n;
};

static const char BAD_FORMAT[] = "CLIENT_ERROR bad command line format";

/* ---- output ------------------------------------------------------------- */

void conn_out(struct conn *c, const char *s, size_t n) {
  if (c->wlen + n > c->wsize) {
    size_t size = c->wsize ? c->wsize : 4096;
    while (size < c->wlen + n)
      size *= 2;
    char *b = realloc(c->wbuf, size);
    if (!b) {
      c->closing = 1;
      return;
    }
    c->wbuf = b;
    c->wsize = size;
  }
  memcpy(c->wbuf + c->wlen, s, n);
  c->wlen += n;
}

void conn_outs(struct conn *c, const char *s) {
  conn_out(c, s, strlen(s));
  conn_out(c, "\r\n", 2);
}

/* ---- parsing helpers ---------------------------------------------------- */

static int tokenize(const char *line, size_t len, struct token *t, int max) {
  int n = 0;
  size_t i = 0;
  while (i < len) {
    while (i < len && line[i] == ' ')
      i++;
    if (i == len)
      break;
    size_t start = i;
    while (i < len && line[i] != ' ')
      i++;
    if (n == max)
      return -1;
    t[n].s = line + start;
    t[n].n = i - start;
    n++;
  }
  return n;
}

static int tok_is(const struct token *t, const char *word) {
  size_t n = strlen(word);
  return t->n == n && memcmp(t->s, word, n) == 0;
}

/* Decimal numbers the way memcached's safe_strto* accept them. */
static int tok_u64(const struct token *t, uint64_t *out) {
  if (t->n == 0 || t->n > 20)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (t->s[i] < '0' || t->s[i] > '9')
      return -1;
    uint64_t d = (uint64_t)(t->s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static int tok_u32(const struct token *t, uint32_t *out) {
  uint64_t v;
  if (tok_u64(t, &v) < 0 || v > UINT32_MAX)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int tok_i64(const struct token *t, int64_t *out) {
  struct token u = *t;
  int neg = 0;
  if (u.n > 0 && u.s[0] == '-') {
    neg = 1;
    u.s++;
    u.n--;
  }
  uint64_t v;
  if (tok_u64(&u, &v) < 0 || v > (uint64_t)INT64_MAX)
    return -1;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return 0;
}

static int key_ok(const struct token *t) { return t->n > 0 && t->n <= MCD_KEY_MAX; }

static void out_num(struct conn *c, uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  conn_outs(c, buf);
}

/* ---- commands ----------------------------------------------------------- */

static int noreply_at(const struct token *t, int nt, int idx) {
  return nt > idx && tok_is(&t[idx], "noreply");
}

/* The next word of a line from *pos, or 0 when there is none. */
static int next_word(const char *line, size_t len, size_t *pos, struct token *t) {
  size_t i = *pos;
  while (i < len && line[i] == ' ')
    i++;
  if (i == len)
    return 0;
  size_t start = i;
  while (i < len && line[i] != ' ')
    i++;
  t->s = line + start;
  t->n = i - start;
  *pos = i;
  return 1;
}

/* get/gets, and gat/gats with `touch` (the exptime, already converted): the
 * keys are the words of the line after `pos` (any number of them: clients
 * send multi-gets of thousands of keys in one line). */
static void cmd_get(struct conn *c, const char *line, size_t len, size_t pos, int with_cas,
                    int touch, int64_t exptime) {
  struct token k;
  size_t p = pos;
  int nkeys = 0;
  while (next_word(line, len, &p, &k)) {
    if (!key_ok(&k)) {
      conn_outs(c, BAD_FORMAT);
      return;
    }
    nkeys++;
  }
  if (nkeys == 0) {
    conn_outs(c, "ERROR");
    return;
  }
  int64_t now = mcd_now();
  p = pos;
  while (next_word(line, len, &p, &k)) {
    STAT_ADD(cmd_get, 1);
    if (touch)
      STAT_ADD(cmd_touch, 1);
    pthread_mutex_lock(&cache_lock);
    struct item *it = touch ? cache_touch(k.s, k.n, exptime, now) : cache_get(k.s, k.n, now);
    if (it) {
      char hdr[MCD_KEY_MAX + 96];
      int n;
      if (with_cas)
        n = snprintf(hdr, sizeof hdr, "VALUE %.*s %u %zu %llu\r\n", (int)it->nkey, it->key,
                     it->flags, it->nbytes, (unsigned long long)it->cas);
      else
        n = snprintf(hdr, sizeof hdr, "VALUE %.*s %u %zu\r\n", (int)it->nkey, it->key, it->flags,
                     it->nbytes);
      conn_out(c, hdr, (size_t)n);
      conn_out(c, it->data, it->nbytes);
      conn_out(c, "\r\n", 2);
    }
    pthread_mutex_unlock(&cache_lock);
    if (it)
      STAT_ADD(get_hits, 1);
    else
      STAT_ADD(get_misses, 1);
    if (touch && it)
      STAT_ADD(touch_hits, 1);
    else if (touch)
      STAT_ADD(touch_misses, 1);
  }
  conn_outs(c, "END");
}

static const char BAD_EXPTIME[] = "CLIENT_ERROR invalid exptime argument";

/* gat/gats <exptime> <key>*: get and touch. */
static void cmd_gat(struct conn *c, const char *line, size_t len, size_t pos, int with_cas) {
  struct token e;
  int64_t exptime;
  if (!next_word(line, len, &pos, &e)) {
    conn_outs(c, "ERROR");
    return;
  }
  if (tok_i64(&e, &exptime) < 0) {
    conn_outs(c, BAD_EXPTIME);
    return;
  }
  cmd_get(c, line, len, pos, with_cas, 1, mcd_realtime(exptime));
}

/* touch <key> <exptime> [noreply] */
static void cmd_touch(struct conn *c, struct token *t, int nt) {
  int noreply = noreply_at(t, nt, 3);
  int64_t exptime;
  if (!key_ok(&t[1])) {
    conn_outs(c, BAD_FORMAT);
    return;
  }
  if (tok_i64(&t[2], &exptime) < 0) {
    conn_outs(c, BAD_EXPTIME);
    return;
  }
  STAT_ADD(cmd_touch, 1);
  pthread_mutex_lock(&cache_lock);
  struct item *it = cache_touch(t[1].s, t[1].n, mcd_realtime(exptime), mcd_now());
  pthread_mutex_unlock(&cache_lock);
  if (it)
    STAT_ADD(touch_hits, 1);
  else
    STAT_ADD(touch_misses, 1);
  if (!noreply)
    conn_outs(c, it ? "TOUCHED" : "NOT_FOUND");
}

/* The command line of a storage command: its arguments, or -1 with the
 * error reply written. Sets *vlen to the value's length (or -1 when the line
 * is too bad to know it). */
struct store_args {
  enum store_op op;
  uint32_t flags;
  int64_t exptime;
  uint64_t cas;
  int64_t vlen;
  int noreply;
};

static int parse_store(struct token *t, int nt, struct store_args *a) {
  int is_cas = a->op == OP_CAS;
  int base = is_cas ? 6 : 5;
  a->noreply = noreply_at(t, nt, base);
  a->vlen = -1;
  if (!key_ok(&t[1]))
    return -1;
  int64_t v;
  if (tok_u32(&t[2], &a->flags) < 0 || tok_i64(&t[3], &a->exptime) < 0 || tok_i64(&t[4], &v) < 0)
    return -1;
  if (is_cas && tok_u64(&t[5], &a->cas) < 0)
    return -1;
  if (v < 0 || v > INT32_MAX - 2)
    return -1;
  a->vlen = v;
  return 0;
}

static const char *store_reply(enum store_result r) {
  switch (r) {
  case STORE_STORED: return "STORED";
  case STORE_NOT_STORED: return "NOT_STORED";
  case STORE_EXISTS: return "EXISTS";
  case STORE_NOT_FOUND: return "NOT_FOUND";
  case STORE_NO_MEMORY: return "SERVER_ERROR out of memory storing object";
  }
  return "SERVER_ERROR";
}

/* Executes a storage command whose value is `data` (vlen bytes, then what
 * should be CRLF). */
static void do_store(struct conn *c, struct token *t, struct store_args *a, const char *data) {
  if (data[a->vlen] != '\r' || data[a->vlen + 1] != '\n') {
    conn_outs(c, "CLIENT_ERROR bad data chunk");
    return;
  }
  STAT_ADD(cmd_set, 1);
  int64_t now = mcd_now();
  pthread_mutex_lock(&cache_lock);
  enum store_result r = cache_store(a->op, t[1].s, t[1].n, data, (size_t)a->vlen, a->flags,
                                    mcd_realtime(a->exptime), a->cas, now);
  pthread_mutex_unlock(&cache_lock);
  if (a->op == OP_CAS) {
    if (r == STORE_STORED)
      STAT_ADD(cas_hits, 1);
    else if (r == STORE_EXISTS)
      STAT_ADD(cas_badval, 1);
    else if (r == STORE_NOT_FOUND)
      STAT_ADD(cas_misses, 1);
  }
  if (!a->noreply || r == STORE_NO_MEMORY)
    conn_outs(c, store_reply(r));
}

static void cmd_delete(struct conn *c, struct token *t, int nt) {
  if (!key_ok(&t[1])) {
    conn_outs(c, BAD_FORMAT);
    return;
  }
  int noreply = 0;
  if (nt > 2) {
    int hold_is_zero = tok_is(&t[2], "0");
    noreply = tok_is(&t[nt - 1], "noreply");
    int valid = (nt == 3 && (hold_is_zero || noreply)) || (nt == 4 && hold_is_zero && noreply);
    if (!valid) {
      conn_outs(c, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
      return;
    }
  }
  pthread_mutex_lock(&cache_lock);
  int found = cache_delete(t[1].s, t[1].n, mcd_now());
  pthread_mutex_unlock(&cache_lock);
  if (found)
    STAT_ADD(delete_hits, 1);
  else
    STAT_ADD(delete_misses, 1);
  if (!noreply)
    conn_outs(c, found ? "DELETED" : "NOT_FOUND");
}

static void cmd_delta(struct conn *c, struct token *t, int nt, int incr) {
  int noreply = noreply_at(t, nt, 3);
  if (!key_ok(&t[1])) {
    conn_outs(c, BAD_FORMAT);
    return;
  }
  uint64_t delta;
  if (tok_u64(&t[2], &delta) < 0) {
    conn_outs(c, "CLIENT_ERROR invalid numeric delta argument");
    return;
  }
  uint64_t v = 0;
  pthread_mutex_lock(&cache_lock);
  enum delta_result r = cache_delta(t[1].s, t[1].n, incr, delta, mcd_now(), &v);
  pthread_mutex_unlock(&cache_lock);
  if (r == DELTA_OK || r == DELTA_NOT_FOUND) {
    if (incr)
      STAT_ADD(incr_hits, r == DELTA_OK), STAT_ADD(incr_misses, r == DELTA_NOT_FOUND);
    else
      STAT_ADD(decr_hits, r == DELTA_OK), STAT_ADD(decr_misses, r == DELTA_NOT_FOUND);
  }
  switch (r) {
  case DELTA_OK:
    if (!noreply)
#ifdef MCD_INJECT_BUG /* mcd-2-bad: decr answers one more than it stored */
      out_num(c, incr ? v : v + 1);
#else
      out_num(c, v);
#endif
    break;
  case DELTA_NOT_FOUND:
    if (!noreply)
      conn_outs(c, "NOT_FOUND");
    break;
  case DELTA_NON_NUMERIC:
    conn_outs(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
    break;
  case DELTA_NO_MEMORY:
    conn_outs(c, "SERVER_ERROR out of memory");
    break;
  }
}

static void cmd_flush_all(struct conn *c, struct token *t, int nt) {
  int noreply = tok_is(&t[nt - 1], "noreply");
  int64_t delay = 0;
  int args = nt - 1 - noreply;
  if (args > 1 || (args == 1 && (tok_i64(&t[1], &delay) < 0 || delay < 0))) {
    conn_outs(c, BAD_FORMAT);
    return;
  }
  STAT_ADD(cmd_flush, 1);
  int64_t now = mcd_now();
  pthread_mutex_lock(&cache_lock);
  cache_flush(delay > 0 ? mcd_realtime(delay) : 0, now);
  pthread_mutex_unlock(&cache_lock);
  if (!noreply)
    conn_outs(c, "OK");
}

static void stat_line(struct conn *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void stat_line(struct conn *c, const char *name, const char *fmt, ...) {
  char buf[256];
  int n = snprintf(buf, sizeof buf, "STAT %s ", name);
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  conn_outs(c, buf);
}

#define STAT_U64(name) stat_line(c, #name, "%llu", (unsigned long long)STAT_GET(name))

static void cmd_stats(struct conn *c, struct token *t, int nt) {
  if (nt == 2 && tok_is(&t[1], "reset")) {
    uint64_t curr = STAT_GET(curr_connections);
    uint64_t total = STAT_GET(total_connections);
    memset(&stats, 0, sizeof stats); /* racy against the workers, as memcached's is not: good enough for counters */
    __atomic_store_n(&stats.curr_connections, curr, __ATOMIC_RELAXED);
    __atomic_store_n(&stats.total_connections, total, __ATOMIC_RELAXED);
    conn_outs(c, "RESET");
    return;
  }
  if (nt == 2 && tok_is(&t[1], "items")) {
    size_t number;
    int64_t age, now = mcd_now();
    pthread_mutex_lock(&cache_lock);
    cache_item_stats(now, &number, &age);
    pthread_mutex_unlock(&cache_lock);
    stat_line(c, "items:1:number", "%zu", number);
    stat_line(c, "items:1:age", "%lld", (long long)(number ? age : 0));
    conn_outs(c, "END");
    return;
  }
  if (nt > 1) {
    conn_outs(c, "ERROR");
    return;
  }
  int64_t now = mcd_now();
  stat_line(c, "pid", "%d", (int)getpid());
  stat_line(c, "uptime", "%lld", (long long)(now - process_started));
  stat_line(c, "time", "%lld", (long long)now);
  stat_line(c, "version", "%s", MCD_VERSION);
  stat_line(c, "pointer_size", "%d", (int)(8 * sizeof(void *)));
  STAT_U64(curr_connections);
  STAT_U64(total_connections);
  STAT_U64(cmd_get);
  STAT_U64(cmd_set);
  STAT_U64(cmd_flush);
  STAT_U64(get_hits);
  STAT_U64(get_misses);
  STAT_U64(get_expired);
  STAT_U64(delete_misses);
  STAT_U64(delete_hits);
  STAT_U64(incr_misses);
  STAT_U64(incr_hits);
  STAT_U64(decr_misses);
  STAT_U64(decr_hits);
  STAT_U64(cas_misses);
  STAT_U64(cas_hits);
  STAT_U64(cas_badval);
  STAT_U64(cmd_touch);
  STAT_U64(touch_hits);
  STAT_U64(touch_misses);
  stat_line(c, "threads", "%d", nworkers);
  pthread_mutex_lock(&cache_lock);
  size_t items = cache.count, bytes = cache.bytes;
  pthread_mutex_unlock(&cache_lock);
  stat_line(c, "curr_items", "%zu", items);
  STAT_U64(total_items);
  STAT_U64(evictions);
  stat_line(c, "bytes", "%zu", bytes);
  stat_line(c, "limit_maxbytes", "%zu", mem_limit);
  conn_outs(c, "END");
}

/* One command line (without its line end). Returns the bytes consumed beyond
 * the line (a storage command's value and CRLF), or -1 when the value has not
 * fully arrived: the line is then executed again once more input came. */
static long execute(struct conn *c, const char *line, size_t len, const char *rest, size_t avail) {
  struct token t[MAX_TOKENS];
  size_t after_cmd = 0;
  if (!next_word(line, len, &after_cmd, &t[0])) {
    conn_outs(c, "ERROR");
    return 0;
  }
  if (tok_is(&t[0], "get") || tok_is(&t[0], "gets")) {
    cmd_get(c, line, len, after_cmd, t[0].n == 4, 0, 0);
    return 0;
  }
  if (tok_is(&t[0], "gat") || tok_is(&t[0], "gats")) {
    cmd_gat(c, line, len, after_cmd, t[0].n == 4);
    return 0;
  }
  int nt = tokenize(line, len, t, MAX_TOKENS);
  if (nt < 0) {
    conn_outs(c, "ERROR");
    return 0;
  }
  struct token *cmd = &t[0];
  struct store_args a;
  memset(&a, 0, sizeof a);
  int store = 1;
  if (tok_is(cmd, "set"))
    a.op = OP_SET;
  else if (tok_is(cmd, "add"))
    a.op = OP_ADD;
  else if (tok_is(cmd, "replace"))
    a.op = OP_REPLACE;
  else if (tok_is(cmd, "append"))
    a.op = OP_APPEND;
  else if (tok_is(cmd, "prepend"))
    a.op = OP_PREPEND;
  else if (tok_is(cmd, "cas"))
    a.op = OP_CAS;
  else
    store = 0;
  if (store) {
    int words = a.op == OP_CAS ? 6 : 5;
    if (nt != words && nt != words + 1) {
      conn_outs(c, "ERROR");
      return 0;
    }
    if (parse_store(t, nt, &a) < 0) {
      conn_outs(c, BAD_FORMAT);
      if (a.vlen < 0)
        return 0;
    }
    if (a.vlen > MCD_ITEM_SIZE_MAX) {
      /* memcached: refuse, discard the value, and for set drop the old one
       * so that no stale value persists */
      conn_outs(c, "SERVER_ERROR object too large for cache");
      if (a.op == OP_SET) {
        pthread_mutex_lock(&cache_lock);
        cache_delete(t[1].s, t[1].n, mcd_now());
        pthread_mutex_unlock(&cache_lock);
      }
      c->swallow = (size_t)a.vlen + 2;
      return 0;
    }
    if (avail < (size_t)a.vlen + 2)
      return -1;
    do_store(c, t, &a, rest);
    return a.vlen + 2;
  }
  if (tok_is(cmd, "touch")) {
    if (nt != 3 && nt != 4)
      conn_outs(c, "ERROR");
    else
      cmd_touch(c, t, nt);
  } else if (tok_is(cmd, "delete")) {
    if (nt < 2 || nt > 4)
      conn_outs(c, "ERROR");
    else
      cmd_delete(c, t, nt);
  } else if (tok_is(cmd, "incr") || tok_is(cmd, "decr")) {
    if (nt != 3 && nt != 4)
      conn_outs(c, "ERROR");
    else
      cmd_delta(c, t, nt, cmd->s[0] == 'i');
  } else if (tok_is(cmd, "flush_all")) {
    if (nt > 3)
      conn_outs(c, "ERROR");
    else
      cmd_flush_all(c, t, nt);
  } else if (tok_is(cmd, "version")) {
    conn_outs(c, "VERSION " MCD_VERSION);
  } else if (tok_is(cmd, "verbosity")) {
    if (nt != 2 && nt != 3)
      conn_outs(c, "ERROR");
    else if (!noreply_at(t, nt, 2))
      conn_outs(c, "OK");
  } else if (tok_is(cmd, "stats")) {
    cmd_stats(c, t, nt);
  } else if (tok_is(cmd, "quit")) {
    c->closing = 1;
  } else {
    conn_outs(c, "ERROR");
  }
  return 0;
}

/* Whether a (partial) line is a retrieval command, whose line may be long. */
static int is_retrieval(const char *s, size_t n) {
  return (n >= 4 && (memcmp(s, "get ", 4) == 0 || memcmp(s, "gat ", 4) == 0)) ||
         (n >= 5 && (memcmp(s, "gets ", 5) == 0 || memcmp(s, "gats ", 5) == 0));
}

void proto_process(struct conn *c) {
  size_t pos = 0;
  while (pos < c->rlen && !c->closing) {
    if (c->swallow) {
      size_t n = c->rlen - pos < c->swallow ? c->rlen - pos : c->swallow;
      pos += n;
      c->swallow -= n;
      continue;
    }
    char *start = c->rbuf + pos;
    char *nl = memchr(start, '\n', c->rlen - pos);
    if (!nl) {
      if (c->rlen - pos > (is_retrieval(start, c->rlen - pos) ? MAX_GET_LINE : MAX_LINE)) {
        conn_outs(c, "CLIENT_ERROR line too long");
        c->closing = 1;
        pos = c->rlen;
      }
      break;
    }
    size_t len = (size_t)(nl - start);
    size_t consumed = len + 1;
    if (len > 0 && start[len - 1] == '\r')
      len--;
    if (len > (is_retrieval(start, len) ? MAX_GET_LINE : MAX_LINE)) {
      conn_outs(c, "CLIENT_ERROR line too long");
      c->closing = 1;
      pos = c->rlen;
      break;
    }
    long extra = execute(c, start, len, nl + 1, c->rlen - pos - consumed);
    if (extra < 0)
      break; /* the value is still arriving */
    pos += consumed + (size_t)extra;
  }
  if (pos > 0) {
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
  }
}
