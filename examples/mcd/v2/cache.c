/*
 * cache.c: the item table, shared by every worker thread.
 *
 * A chained hash table whose bucket array doubles, all at once, when it holds
 * more items than buckets. Every function here runs with cache_lock held.
 * Expired and flushed items are unlinked lazily, when a lookup finds them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcd.h"

struct cache cache;
pthread_mutex_t cache_lock MVEDSUA_OPAQUE = PTHREAD_MUTEX_INITIALIZER;
uint64_t next_cas = 1;
size_t mem_limit = (size_t)MCD_DEFAULT_MEMORY_MB * 1024 * 1024;

#define INITIAL_BUCKETS 1024

int64_t mcd_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

/* memcached's rule: 0 never expires, a negative time is already past, up to
 * 30 days is relative to now, anything larger is an absolute Unix time (one
 * not after the server started counts as past). */
int64_t mcd_realtime(int64_t exptime) {
  if (exptime == 0)
    return 0;
  if (exptime < 0)
    return 1;
  if (exptime > MCD_REALTIME_MAXDELTA)
    return exptime <= process_started ? 1 : exptime;
  return mcd_now() + exptime;
}

void cache_init(void) {
  cache.nbuckets = INITIAL_BUCKETS;
  cache.buckets = calloc(cache.nbuckets, sizeof *cache.buckets);
  cache.count = 0;
  cache.bytes = 0;
  cache.flush_at = 0;
}

static uint64_t hash(const char *key, size_t n) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)key[i];
    h *= 1099511628211ull;
  }
  return h;
}

static size_t item_size(const struct item *it) {
  return sizeof *it + it->nkey + it->nbytes;
}

static void item_free(struct item *it) {
  free(it->key);
  free(it->data);
  free(it);
}

static int item_dead(const struct item *it, int64_t now) {
  if (it->exptime != 0 && it->exptime <= now)
    return 1;
  return cache.flush_at != 0 && cache.flush_at <= now && it->time <= cache.flush_at;
}

static void grow(void) {
  size_t n = cache.nbuckets * 2;
  struct item **b = calloc(n, sizeof *b);
  if (!b)
    return; /* keep the longer chains */
  for (size_t i = 0; i < cache.nbuckets; i++) {
    struct item *it = cache.buckets[i];
    while (it) {
      struct item *next = it->next;
      size_t j = hash(it->key, it->nkey) & (n - 1);
      it->next = b[j];
      b[j] = it;
      it = next;
    }
  }
  free(cache.buckets);
  cache.buckets = b;
  cache.nbuckets = n;
}

/* The slot that points to the item with this key, or to the NULL ending its
 * chain. */
static struct item **find_slot(const char *key, size_t nkey) {
  struct item **p = &cache.buckets[hash(key, nkey) & (cache.nbuckets - 1)];
  while (*p && ((*p)->nkey != nkey || memcmp((*p)->key, key, nkey) != 0))
    p = &(*p)->next;
  return p;
}

static void unlink_at(struct item **slot) {
  struct item *it = *slot;
  *slot = it->next;
  cache.count--;
  cache.bytes -= item_size(it);
  item_free(it);
}

/* The live item with this key; a dead one found is unlinked. */
static struct item **live_slot(const char *key, size_t nkey, int64_t now) {
  struct item **slot = find_slot(key, nkey);
  if (*slot && item_dead(*slot, now)) {
    if ((*slot)->exptime != 0 && (*slot)->exptime <= now)
      STAT_ADD(get_expired, 1);
    unlink_at(slot);
  }
  return slot;
}

struct item *cache_get(const char *key, size_t nkey, int64_t now) {
  struct item *it = *live_slot(key, nkey, now);
  if (it)
    it->atime = now;
  return it;
}

/* touch and gat: a new expiry time for a live item, which is returned as it
 * was found (gat -1 returns the value, then it is gone). */
struct item *cache_touch(const char *key, size_t nkey, int64_t exptime, int64_t now) {
  struct item *it = *live_slot(key, nkey, now);
  if (it) {
    it->exptime = exptime;
    it->atime = now;
  }
  return it;
}

void cache_item_stats(int64_t now, size_t *number, int64_t *age) {
  size_t n = 0;
  int64_t oldest = now;
  for (size_t i = 0; i < cache.nbuckets; i++)
    for (struct item *it = cache.buckets[i]; it; it = it->next)
      if (!item_dead(it, now)) {
        n++;
        if (it->atime < oldest)
          oldest = it->atime;
      }
  *number = n;
  *age = now - oldest;
}

static struct item *item_new(const char *key, size_t nkey, const char *data, size_t nbytes) {
  struct item *it = calloc(1, sizeof *it);
  if (!it)
    return NULL;
  it->key = malloc(nkey);
  it->data = malloc(nbytes ? nbytes : 1);
  if (!it->key || !it->data) {
    item_free(it);
    return NULL;
  }
  memcpy(it->key, key, nkey);
  it->nkey = nkey;
  memcpy(it->data, data, nbytes);
  it->nbytes = nbytes;
  return it;
}

/* Replaces the item at *slot (or links it there when *slot is NULL). */
static void link_at(struct item **slot, struct item *it, int64_t now) {
  it->time = now;
  it->atime = now;
  it->cas = next_cas++;
  if (*slot) {
    struct item *old = *slot;
    it->next = old->next;
    *slot = it;
    cache.bytes -= item_size(old);
    item_free(old);
  } else {
    it->next = NULL;
    *slot = it;
    cache.count++;
  }
  cache.bytes += item_size(it);
  STAT_ADD(total_items, 1);
}

static int fits(size_t add, size_t remove) {
  return cache.bytes - remove + add <= mem_limit;
}

/* Makes room for `need` more bytes under the -m limit by evicting items, the
 * chain heads of the buckets in turn from where the last eviction stopped (a
 * clock hand over the table, not memcached's LRU). Called before a command
 * looks its key up, so that no slot it holds can be evicted under it. */
size_t evict_hand;

static void make_room(size_t need) {
  size_t scanned = 0;
  while (cache.count > 0 && !fits(need, 0) && scanned < 2 * cache.nbuckets) {
    struct item **slot = &cache.buckets[evict_hand % cache.nbuckets];
    if (*slot) {
      unlink_at(slot);
      STAT_ADD(evictions, 1);
      scanned = 0;
    } else {
      evict_hand++;
      scanned++;
    }
  }
}

enum store_result cache_store(enum store_op op, const char *key, size_t nkey, const char *data,
                              size_t nbytes, uint32_t flags, int64_t exptime, uint64_t cas_in,
                              int64_t now) {
  make_room(sizeof(struct item) + nkey + nbytes);
  struct item **slot = live_slot(key, nkey, now);
  struct item *old = *slot;
  switch (op) {
  case OP_ADD:
    if (old)
      return STORE_NOT_STORED;
    break;
  case OP_REPLACE:
  case OP_APPEND:
  case OP_PREPEND:
    if (!old)
      return STORE_NOT_STORED;
    break;
  case OP_CAS:
    if (!old)
      return STORE_NOT_FOUND;
    if (old->cas != cas_in)
      return STORE_EXISTS;
    break;
  case OP_SET:
    break;
  }
  struct item *it;
  if (op == OP_APPEND || op == OP_PREPEND) {
    size_t total = old->nbytes + nbytes;
    if (total > MCD_ITEM_SIZE_MAX || !fits(sizeof *old + nkey + total, item_size(old)))
      return STORE_NO_MEMORY;
    it = item_new(key, nkey, "", 0);
    char *d = it ? malloc(total ? total : 1) : NULL;
    if (!d) {
      if (it)
        item_free(it);
      return STORE_NO_MEMORY;
    }
    free(it->data);
    it->data = d;
    it->nbytes = total;
    if (op == OP_APPEND) {
      memcpy(d, old->data, old->nbytes);
      memcpy(d + old->nbytes, data, nbytes);
    } else {
      memcpy(d, data, nbytes);
      memcpy(d + nbytes, old->data, old->nbytes);
    }
    it->flags = old->flags; /* append and prepend ignore flags and exptime */
    it->exptime = old->exptime;
  } else {
    if (!fits(sizeof *old + nkey + nbytes, old ? item_size(old) : 0) ||
        !(it = item_new(key, nkey, data, nbytes)))
      return STORE_NO_MEMORY;
    it->flags = flags;
    it->exptime = exptime;
  }
  link_at(slot, it, now);
  if (cache.count > cache.nbuckets)
    grow();
  return STORE_STORED;
}

int cache_delete(const char *key, size_t nkey, int64_t now) {
  struct item **slot = live_slot(key, nkey, now);
  if (!*slot)
    return 0;
  unlink_at(slot);
  return 1;
}

/* memcached's safe_strtoull on a value: digits, then nothing but a trailing
 * blank. */
static int value_to_u64(const char *s, size_t n, uint64_t *out) {
  char buf[32];
  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  uint64_t v = 0;
  size_t i = 0;
  if (buf[0] < '0' || buf[0] > '9')
    return -1;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
    uint64_t d = (uint64_t)(buf[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  for (; i < n; i++)
    if (buf[i] != ' ' && buf[i] != '\r' && buf[i] != '\n' && buf[i] != '\t')
      return -1;
  *out = v;
  return 0;
}

enum delta_result cache_delta(const char *key, size_t nkey, int incr, uint64_t delta, int64_t now,
                              uint64_t *result) {
  make_room(sizeof(struct item) + nkey + 20);
  struct item **slot = live_slot(key, nkey, now);
  struct item *old = *slot;
  if (!old)
    return DELTA_NOT_FOUND;
  uint64_t v;
  if (value_to_u64(old->data, old->nbytes, &v) < 0)
    return DELTA_NON_NUMERIC;
  if (incr)
    v += delta; /* wraps at 2^64, as memcached's does */
  else
    v = delta > v ? 0 : v - delta;
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  struct item *it;
  if (!fits(sizeof *old + nkey + (size_t)n, item_size(old)) ||
      !(it = item_new(key, nkey, buf, (size_t)n)))
    return DELTA_NO_MEMORY;
  it->flags = old->flags;
  it->exptime = old->exptime;
  link_at(slot, it, now);
  *result = v;
  return DELTA_OK;
}

/* flush_all: at == 0 empties the cache now; otherwise every item stored up to
 * `at` dies at `at`. */
void cache_flush(int64_t at, int64_t now) {
  if (at > now) {
    cache.flush_at = at;
    return;
  }
  for (size_t i = 0; i < cache.nbuckets; i++) {
    struct item *it = cache.buckets[i];
    while (it) {
      struct item *next = it->next;
      item_free(it);
      it = next;
    }
    cache.buckets[i] = NULL;
  }
  cache.count = 0;
  cache.bytes = 0;
  cache.flush_at = 0;
}
