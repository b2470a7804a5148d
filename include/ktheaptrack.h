/*
 * ktheaptrack.h: Kitsune's heap lists on mvedsua (NOTE_HEAP, UNNOTE_HEAP).
 *
 * A kitsune_heaplist is a list of heap objects the program keeps, usually
 * because nothing else in its state reaches them (objects handed to a
 * library). The program declares one as a global, typed with E_G:
 *
 *   kitsune_heaplist E_G(struct session) sessions;
 *   kitsune_heaplist_init(&sessions);
 *   NOTE_HEAP(&sessions, s);          s is state from now on
 *   UNNOTE_HEAP(&sessions, s);        not any more (1 if it was listed)
 *   HEAPLIST_FOR_EACH(&sessions, cur, struct session *, it) { ... }
 *
 * The list is a global like any other: an update moves it to the new
 * version, with its nodes and the objects they list (they stay where they
 * are). When the listed type changes, mvedsua-xfgen transforms the objects
 * through the E_G binding, as for any generic container (docs/kitsune.md).
 * The nodes come from malloc.
 */
#ifndef KTHEAPTRACK_H
#define KTHEAPTRACK_H

#include <kitsune.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kitsune_heaplist_node {
  void E_T(@t) * addr;
  struct kitsune_heaplist_node E_G(@t) * next;
} E_GENERIC(@t);

typedef struct kitsune_heaplist_node E_G(@t)
    kitsune_heaplist_node E_GENERIC(@t);

struct kitsune_heaplist {
  kitsune_heaplist_node E_G(@t) * begin;
  kitsune_heaplist_node E_G(@t) * last;
} E_GENERIC(@t);

typedef struct kitsune_heaplist E_G(@t) kitsune_heaplist E_GENERIC(@t);

typedef kitsune_heaplist_node kitsune_heaplist_iterator;

void kitsune_heaplist_init(kitsune_heaplist *list);
/* kitsune_heaplist_add and kitsune_heaplist_del: kitsune.h (NOTE_HEAP). */
kitsune_heaplist_iterator *kitsune_heaplist_begin(kitsune_heaplist *list);
kitsune_heaplist_iterator *kitsune_heaplist_end(kitsune_heaplist *list);
kitsune_heaplist_iterator *kitsune_heaplist_last(kitsune_heaplist *list);
kitsune_heaplist_iterator *kitsune_heaplist_next(kitsune_heaplist_iterator *it);
int kitsune_heaplist_isempty(kitsune_heaplist *list);

/* Each listed object in turn, as `type`, in `cur`; `tmp` is the iterator. */
#define HEAPLIST_FOR_EACH(list, cur, type, tmp)                                \
  for ((tmp) = kitsune_heaplist_begin(list),                                   \
      (cur) = (tmp) ? (type)((tmp)->addr) : (type)0;                           \
       (tmp) != kitsune_heaplist_end(list);                                    \
       (tmp) = kitsune_heaplist_next(tmp),                                     \
      (cur) = (tmp) ? (type)((tmp)->addr) : (type)0)

#ifdef __cplusplus
}
#endif

#endif /* KTHEAPTRACK_H */
