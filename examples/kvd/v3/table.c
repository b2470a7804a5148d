/*
 * table.c: the key space, a chained hash table that doubles its bucket array
 * when the load factor exceeds 1. Version 2 moves the entries to the new
 * array incrementally, REHASH_STEP buckets per table operation.
 */
#include <stdlib.h>
#include <string.h>

#include "kvd.h"

#define TABLE_INITIAL_BUCKETS 16
/* Buckets moved per operation. Growth starts at count > n with 2n new
 * buckets, so n more inserts finish the move before the next growth. */
#define REHASH_STEP 2

/* FNV-1a: deterministic (no random seed), so a leader and a follower running
 * the same version lay the table out identically. */
static uint64_t hash_bytes(const char *p, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* n is a power of two. */
static size_t bucket_index(const char *key, size_t keylen, size_t n) {
  return (size_t)hash_bytes(key, keylen) & (n - 1);
}

/* malloc(0) may return NULL; a zero-length string still needs a pointer. */
static char *dup_bytes(const char *p, size_t len) {
  char *copy = malloc(len ? len : 1);
  if (copy && len)
    memcpy(copy, p, len);
  return copy;
}

void table_init(struct table *t) {
  *t = (struct table){.nbuckets = TABLE_INITIAL_BUCKETS};
  t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
  if (!t->buckets)
    abort(); /* at start-up there is nothing to degrade to */
}

static void entry_free(struct entry *e) {
  free(e->key);
  free(e->val);
  free(e);
}

static void free_chains(struct entry **buckets, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct entry *e = buckets[i];
    while (e) {
      struct entry *next = e->next;
      entry_free(e);
      e = next;
    }
    buckets[i] = NULL;
  }
}

static int rehashing(const struct table *t) { return t->old_buckets != NULL; }

static void end_rehash(struct table *t) {
  free(t->old_buckets);
  t->old_buckets = NULL;
  t->old_nbuckets = 0;
  t->rehash_idx = 0;
}

void table_clear(struct table *t) {
  free_chains(t->buckets, t->nbuckets);
  if (rehashing(t)) {
    free_chains(t->old_buckets, t->old_nbuckets);
    end_rehash(t);
  }
  t->count = 0;
}

void table_free(struct table *t) {
  table_clear(t);
  free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
}

/* Moves up to REHASH_STEP old buckets into the new array. */
static void rehash_step(struct table *t) {
  for (int step = 0; step < REHASH_STEP && rehashing(t); step++) {
    struct entry *e = t->old_buckets[t->rehash_idx];
    t->old_buckets[t->rehash_idx] = NULL;
    while (e) {
      struct entry *next = e->next;
      size_t b = bucket_index(e->key, e->keylen, t->nbuckets);
      e->next = t->buckets[b];
      t->buckets[b] = e;
      e = next;
    }
    if (++t->rehash_idx == t->old_nbuckets)
      end_rehash(t);
  }
}

/* Starts moving to a bucket array twice as large. On allocation failure the
 * table stays at its current size (longer chains, still correct). */
static void start_grow(struct table *t) {
  size_t nbuckets = t->nbuckets * 2;
  struct entry **buckets = calloc(nbuckets, sizeof *buckets);
  if (!buckets)
    return;
  t->old_buckets = t->buckets;
  t->old_nbuckets = t->nbuckets;
  t->rehash_idx = 0;
  t->buckets = buckets;
  t->nbuckets = nbuckets;
}

/* The link that points to the entry for key (in either array), or NULL. */
static struct entry **find_link(struct table *t, const char *key,
                                size_t keylen) {
  struct entry **arrays[2] = {t->buckets, t->old_buckets};
  size_t sizes[2] = {t->nbuckets, t->old_nbuckets};
  for (int a = 0; a < 2 && arrays[a]; a++) {
    struct entry **link = &arrays[a][bucket_index(key, keylen, sizes[a])];
    for (; *link; link = &(*link)->next)
      if ((*link)->keylen == keylen && memcmp((*link)->key, key, keylen) == 0)
        return link;
  }
  return NULL;
}

struct entry *table_find(struct table *t, const char *key, size_t keylen) {
  rehash_step(t);
  struct entry **link = find_link(t, key, keylen);
  return link ? *link : NULL;
}

int table_set(struct table *t, const char *key, size_t keylen, const char *val,
              size_t vallen, enum vtype type) {
  char *copy = dup_bytes(val, vallen);
  if (!copy)
    return -1;
  struct entry *e = table_find(t, key, keylen);
  if (e) {
    free(e->val);
    e->val = copy;
    e->vallen = vallen;
    e->type = type;
    return 0;
  }
  e = malloc(sizeof *e);
  char *keycopy = dup_bytes(key, keylen);
  if (!e || !keycopy) {
    free(e);
    free(keycopy);
    free(copy);
    return -1;
  }
  *e = (struct entry){.key = keycopy, .keylen = keylen, .val = copy,
                      .vallen = vallen, .type = type};
  size_t b = bucket_index(key, keylen, t->nbuckets); /* new keys go to the new array */
  e->next = t->buckets[b];
  t->buckets[b] = e;
  t->count++;
  if (t->count > t->nbuckets && !rehashing(t))
    start_grow(t);
  return 0;
}

int table_del(struct table *t, const char *key, size_t keylen) {
  rehash_step(t);
  struct entry **link = find_link(t, key, keylen);
  if (!link)
    return 0;
  struct entry *e = *link;
  *link = e->next;
  entry_free(e);
  t->count--;
  return 1;
}
