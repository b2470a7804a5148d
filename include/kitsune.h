/*
 * kitsune.h: Kitsune's program API on mvedsua.
 *
 * A program written for Kitsune (kitsune_update, MIGRATE_*, E_* annotations,
 * hand-written transformers named with GLOBAL_XFORM and friends) builds with
 * this header and the MvedsuaPass plugin, unchanged, and runs under
 * mvedsua-run (or the `driver` wrapper). docs/kitsune.md says what maps one
 * to one and what differs. The differences that matter:
 *
 *   - State moves before the new version's main starts (mvedsua migrates
 *     every global, static and local static itself), so
 *     kitsune_do_automigrate() has nothing left to do and MIGRATE_GLOBAL and
 *     friends only report that the update happened, except for variables
 *     marked E_MANUAL_MIGRATE, which they migrate at the call, as Kitsune did.
 *   - A hand-written transformer (int GLOBAL_XFORM(x)(void *new_x)) runs
 *     during the update, before the new main, not at the MIGRATE_* call.
 *   - Locals need MIGRATE_LOCAL (or NOTE_LOCAL) in both versions; E_NOTELOCALS
 *     is accepted and needs nothing else.
 */
#ifndef KITSUNE_H
#define KITSUNE_H

#include <mvedsua.h>
#include <kitsune/annotations.h>
#include <kitsune/manual.h>

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kitsune's type of a hand-written transformer: it receives the new
 * version's variable, reads the old one with GET_OLD_*, and returns true on
 * success (false fails the update). */
typedef int (*xform_fn_t)(void *);
typedef void (*state_xform_fn_t)(void);

/* ---- update points and control migration -------------------------------- */

/* An update may take effect here; `pt` must be a string literal (the plugin
 * lowers the point to one flag check). */
#define kitsune_update(pt) mvedsua_update_point(pt)

static inline int kitsune_is_updating(void) { return mvedsua_is_updating(); }

static inline int kitsune_is_updating_from(const char *pt) {
  return mvedsua_is_updating_from(pt);
}

/* ---- requesting an update from the program ------------------------------ */

/* Both in libmvedsua (link -lmvedsua, or -lkitsune, which is the same
 * library): the update is requested when both were called, in either order,
 * and takes effect at the next update point. A request mvedsua refuses is
 * reported on stderr with the reason. */
void kitsune_signal_update(void);
void kitsune_set_next_version(char *path);
void kitsune_clear_request(void);

/* State is migrated before main starts; this returns at once. */
void kitsune_do_automigrate(void);

/* Kitsune's driver called this entry point of each version; mvedsua-run
 * starts versions itself. It exists so that `-u kitsune_init_inplace` links;
 * calling it reports that and returns -1. */
int kitsune_init_inplace(void);

/* True once an update has happened in this process. */
int kitsune_has_updated(void);

/* ---- the old and the new version's state ---------------------------------- */

/* The address of a variable in the version the running one updated from
 * (old) or in the running one (new), by Kitsune's key parts: name, function
 * (locals and local statics), file (statics, local statics; `main.c` or
 * Kitsune's mangled `main_c`). NULL when there is none, or, for old, outside
 * an update. */
void *kitsune_get_symbol_addr_old(const char *name, const char *funcname,
                                  const char *filename, const char *ns);
void *kitsune_get_symbol_addr_new(const char *name, const char *funcname,
                                  const char *filename, const char *ns);
/* By dynamic symbol (dlsym) in the old / the running version. */
void *kitsune_get_val(const char *symbol);
void *kitsune_get_cur_val(const char *symbol);
/* By mvedsua registry key ("x", "main.c/y", "main.c/main#z"). */
void *kitsune_lookup_key_old(const char *key);
void *kitsune_lookup_key_new(const char *key);
/* True when `ptr` is the old version's object or function `name`. */
int kitsune_old_address_matches(const char *name, void *ptr);

/* ---- migration calls -------------------------------------------------------- */

/* Migrates the variable at `addr` now if it is E_MANUAL_MIGRATE (with its
 * hand-written transformer, or a copy when its type did not change); for any
 * other variable the update already did. Returns 1 while updating when the
 * variable has a value from the old version, 0 otherwise. */
int __kitsune_rt_migrate(const char *name, const char *func, const char *file,
                         void *addr, size_t size);

#define MIGRATE_GLOBAL(global)                                                 \
  __kitsune_rt_migrate(#global, 0, 0, (void *)&(global), sizeof(global))
#define MIGRATE_STATIC(var)                                                    \
  __kitsune_rt_migrate(#var, 0, __FILE__, (void *)&(var), sizeof(var))
#define MIGRATE_LOCAL_STATIC(funcname, var)                                    \
  __kitsune_rt_migrate(#var, #funcname, __FILE__, (void *)&(var), sizeof(var))
/* A local: registered for the update (the plugin keys it "file.c/func#x")
 * and, in the new version while updating, given the old frame's value. */
#define MIGRATE_LOCAL(local)                                                   \
  (MVEDSUA_MIGRATE_LOCAL(local), kitsune_is_updating())
#define NOTE_LOCAL(local) MVEDSUA_MIGRATE_LOCAL(local)
#define NOTE_AND_MIGRATE_LOCAL(local) MIGRATE_LOCAL(local)
/* The plugin registers every static and local static: noting them is done. */
#define NOTE_STATIC(var) ((void)&(var))
#define NOTE_LOCAL_STATIC(var) ((void)&(var))
#define NOTE_AND_MIGRATE_STATIC(var) MIGRATE_STATIC(var)
#define NOTE_AND_MIGRATE_LOCAL_STATIC(func, var) MIGRATE_LOCAL_STATIC(func, var)
/* Kitsune's compiler inserted these with E_NOTELOCALS; nothing to do. */
#define ENTER_FUNC() ((void)0)
#define EXIT_FUNC() ((void)0)

/* ---- heap objects as state (ktheaptrack.h) ---------------------------------- */

/* NOTE_HEAP(&list, p) appends the heap object p to a kitsune_heaplist the
 * program keeps in its state (a global: `kitsune_heaplist E_G(struct T)
 * list;`), which the update moves with the objects it lists; UNNOTE_HEAP
 * takes it out again (1 if it was listed, 0 otherwise). */
struct kitsune_heaplist;
void kitsune_heaplist_add(struct kitsune_heaplist *list, void *addr);
int kitsune_heaplist_del(struct kitsune_heaplist *list, void *addr);
#define NOTE_HEAP(heap, addr) kitsune_heaplist_add((heap), (addr))
#define UNNOTE_HEAP(heap, addr) kitsune_heaplist_del((heap), (addr))

#ifdef __cplusplus
}
#endif

#endif /* KITSUNE_H */
