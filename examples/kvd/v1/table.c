/*
 * table.c: the key space, a chained hash table that doubles its bucket array
 * when the load factor exceeds 1 (all at once in version 1).
 */
#include <stdlib.h>
#include <string.h>

#include "kvd.h"

#define TABLE_INITIAL_BUCKETS 16

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

static size_t bucket_of(const struct table *t, const char *key, size_t keylen) {
  return (size_t)hash_bytes(key, keylen) & (t->nbuckets - 1);
}

/* malloc(0) may return NULL; a zero-length string still needs a pointer. */
static char *dup_bytes(const char *p, size_t len) {
  char *copy = malloc(len ? len : 1);
  if (copy && len)
    memcpy(copy, p, len);
  return copy;
}

void table_init(struct table *t) {
  t->nbuckets = TABLE_INITIAL_BUCKETS;
  t->count = 0;
  t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
  if (!t->buckets)
    abort(); /* at start-up there is nothing to degrade to */
}

static void entry_free(struct entry *e) {
  free(e->key);
  free(e->val);
  free(e);
}

void table_clear(struct table *t) {
  for (size_t i = 0; i < t->nbuckets; i++) {
    struct entry *e = t->buckets[i];
    while (e) {
      struct entry *next = e->next;
      entry_free(e);
      e = next;
    }
    t->buckets[i] = NULL;
  }
  t->count = 0;
}

void table_free(struct table *t) {
  table_clear(t);
  free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
}

struct entry *table_find(const struct table *t, const char *key, size_t keylen) {
  struct entry *e = t->buckets[bucket_of(t, key, keylen)];
  for (; e; e = e->next)
    if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
      return e;
  return NULL;
}

/* Doubles the bucket array and relinks every entry. On allocation failure the
 * table simply stays at its current size (longer chains, still correct). */
static void table_grow(struct table *t) {
  size_t nbuckets = t->nbuckets * 2;
  struct entry **buckets = calloc(nbuckets, sizeof *buckets);
  if (!buckets)
    return;
  for (size_t i = 0; i < t->nbuckets; i++) {
    struct entry *e = t->buckets[i];
    while (e) {
      struct entry *next = e->next;
      size_t b = (size_t)hash_bytes(e->key, e->keylen) & (nbuckets - 1);
      e->next = buckets[b];
      buckets[b] = e;
      e = next;
    }
  }
  free(t->buckets);
  t->buckets = buckets;
  t->nbuckets = nbuckets;
}

int table_set(struct table *t, const char *key, size_t keylen, const char *val,
              size_t vallen) {
  char *copy = dup_bytes(val, vallen);
  if (!copy)
    return -1;
  struct entry *e = table_find(t, key, keylen);
  if (e) {
    free(e->val);
    e->val = copy;
    e->vallen = vallen;
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
                      .vallen = vallen};
  size_t b = bucket_of(t, key, keylen);
  e->next = t->buckets[b];
  t->buckets[b] = e;
  t->count++;
  if (t->count > t->nbuckets)
    table_grow(t);
  return 0;
}

int table_del(struct table *t, const char *key, size_t keylen) {
  struct entry **link = &t->buckets[bucket_of(t, key, keylen)];
  for (; *link; link = &(*link)->next) {
    struct entry *e = *link;
    if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
      *link = e->next;
      entry_free(e);
      t->count--;
      return 1;
    }
  }
  return 0;
}
