/*
 * kitsune/annotations.h: Kitsune's E_* annotations as mvedsua annotations
 * (included by kitsune.h).
 *
 * Each is a btf_decl_tag, which clang accepts in every place Kitsune's
 * programs put them (after the type, after a '*', after the declarator, after
 * a struct's closing brace, on a typedef) and carries into debug info, where
 * MvedsuaPass and mvedsua-xfgen read it:
 *
 *   char *buf E_ARRAY(len);            n: a constant, a sibling field, or
 *   struct e **tbl E_PTRARRAY(self.n); Kitsune's self.field
 *   void * E_OPAQUE handle;            copied as bytes, never followed
 *   int counter E_MANUAL_MIGRATE;      only MIGRATE_GLOBAL(counter) moves it
 *
 * Generics (a container whose void * payloads have a type per use):
 *
 *   struct list { void E_T(@t) *data; struct list E_G(@t) *next; } E_GENERIC(@t);
 *   struct list E_G(struct client *) *clients;   E_G(int), E_G([opaque]),
 *                                                E_G(list<redisClient*>*)
 *
 * The plugin checks them (an @t that the struct does not declare, a count of
 * arguments that differs, a type that does not parse are errors naming the
 * file and line) and records each in the registry (docs/kitsune.md).
 * With E_NOANNOT defined they all vanish, as in Kitsune.
 */
#ifndef KITSUNE_ANNOTATIONS_H
#define KITSUNE_ANNOTATIONS_H

#include <mvedsua.h>

#ifdef E_NOANNOT
#define E_PTR
#define E_OPAQUE
#define E_PTRARRAY(S)
#define E_ARRAY(S)
#define E_GENERIC(...)
#define E_G(...)
#define E_T(...)
#define E_AUTO_MIGRATE
#define E_MANUAL_MIGRATE
#else
/* A pointer to one object: what mvedsua assumes of every pointer. */
#define E_PTR
#define E_OPAQUE MVEDSUA_OPAQUE
#define E_PTRARRAY(S) MVEDSUA_TAG_("mvedsua:ptrarray:" #S)
#define E_ARRAY(S) MVEDSUA_TAG_("mvedsua:array:" #S)
#define E_GENERIC(...) MVEDSUA_TAG_("kitsune:generic:" #__VA_ARGS__)
#define E_G(...) MVEDSUA_TAG_("kitsune:g:" #__VA_ARGS__)
#define E_T(...) MVEDSUA_TAG_("kitsune:t:" #__VA_ARGS__)
/* Migration is automatic in mvedsua: this is the default. */
#define E_AUTO_MIGRATE
/* Not migrated by the update: the new version keeps its initial value until
 * the program calls MIGRATE_GLOBAL / MIGRATE_STATIC on it. */
#define E_MANUAL_MIGRATE MVEDSUA_NO_MIGRATE
#endif

/* Kitsune's compiler saved every local of such a function; mvedsua migrates
 * the locals named by MIGRATE_LOCAL / NOTE_LOCAL, so this needs nothing. */
#define E_NOTELOCALS

/* Kitsune annotations mvedsua has no counterpart for: a build that uses one
 * stops here, saying what to write instead (with E_NOANNOT they vanish, as
 * in Kitsune). _Pragma takes one string literal: each message is one line. */
#ifdef E_NOANNOT
#define E_IGNORE
#define E_CUSTOM(MF, FF)
#define E_SZ
#define E_AUTO
#else
#define E_IGNORE _Pragma("GCC error \"E_IGNORE is not supported by mvedsua: use E_OPAQUE (copied as bytes, never followed) or E_MANUAL_MIGRATE\"")
#define E_CUSTOM(MF, FF) _Pragma("GCC error \"E_CUSTOM is not supported by mvedsua: name the allocator in the .xf spec with ALLOCATOR alloc_fn free_fn\"")
#define E_SZ _Pragma("GCC error \"E_SZ is not supported by mvedsua: use E_ARRAY(n)\"")
#define E_AUTO _Pragma("GCC error \"E_AUTO is not supported by mvedsua: migration is automatic; remove it\"")
#endif

#endif /* KITSUNE_ANNOTATIONS_H */
