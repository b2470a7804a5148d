/*
 * mvedsua/registry.h: the state registry, the contract between the MvedsuaPass
 * plugin (which emits it as constant data in every instrumented module), the
 * runtime (which reads it to transfer state at an update) and generated state
 * transformers.
 *
 * Each instrumented module carries one mvedsua_module, handed to the runtime by
 * a constructor the plugin adds (__mvedsua_rt_register_module). Entries name
 * the module's globals, statics, local statics, migrated locals and functions
 * by a key that is stable across versions; each data entry points to a type
 * descriptor built from debug info.
 *
 * Keys:
 *   external global or function   name
 *   file-level static             file.c/name
 *   static function               file.c/name
 *   function-local static         file.c/function#name
 *   migrated local                file.c/function#name   (kind LOCAL)
 *
 * Layout changes here change MVEDSUA_REGISTRY_ABI.
 */
#ifndef MVEDSUA_REGISTRY_H
#define MVEDSUA_REGISTRY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MVEDSUA_REGISTRY_MAGIC 0x4d564453u /* "MVDS" */
#define MVEDSUA_REGISTRY_ABI 1u

enum mvedsua_type_kind {
  MVEDSUA_TYPE_VOID = 0,
  MVEDSUA_TYPE_INT = 1,      /* signed integer (char, short, int, long...) */
  MVEDSUA_TYPE_UINT = 2,     /* unsigned integer */
  MVEDSUA_TYPE_BOOL = 3,
  MVEDSUA_TYPE_FLOAT = 4,    /* float, double, long double */
  MVEDSUA_TYPE_ENUM = 5,     /* target: the underlying integer type */
  MVEDSUA_TYPE_POINTER = 6,  /* target: pointee (NULL for void *) */
  MVEDSUA_TYPE_ARRAY = 7,    /* target: element; count: elements */
  MVEDSUA_TYPE_STRUCT = 8,   /* fields[count] */
  MVEDSUA_TYPE_UNION = 9,    /* fields[count] */
  MVEDSUA_TYPE_FUNCTION = 10, /* the pointee of a function pointer */
  MVEDSUA_TYPE_OPAQUE = 11,  /* a declared-only struct/union: bytes unknown */
};

enum mvedsua_type_flags {
  MVEDSUA_TYPE_ANONYMOUS = 1u << 0, /* struct/union/enum without a tag */
  MVEDSUA_TYPE_FLEXIBLE = 1u << 1,  /* array of unknown length (T x[]) */
};

/* Annotations, on fields and on entries. */
enum mvedsua_annotation {
  MVEDSUA_ANNOT_NONE = 0,
  MVEDSUA_ANNOT_NO_MIGRATE = 1u << 0,
  MVEDSUA_ANNOT_OPAQUE = 1u << 1,
  MVEDSUA_ANNOT_PTRARRAY = 1u << 2, /* annot_arg: length expression */
  MVEDSUA_ANNOT_ARRAY = 1u << 3,    /* annot_arg: length expression */
};

struct mvedsua_type;

struct mvedsua_field {
  const char *name;        /* "" for an anonymous member */
  uint64_t offset_bits;    /* from the start of the enclosing struct */
  uint64_t size_bits;      /* differs from type->size * 8 for bit-fields */
  const struct mvedsua_type *type;
  uint32_t annotations;    /* enum mvedsua_annotation */
  uint32_t reserved;
  const char *annot_arg;   /* PTRARRAY/ARRAY length: "16" or a sibling name */
};

struct mvedsua_type {
  uint32_t kind;           /* enum mvedsua_type_kind */
  uint32_t flags;          /* enum mvedsua_type_flags */
  uint64_t size;           /* bytes (0 for void and functions) */
  uint64_t count;          /* ARRAY: elements; STRUCT/UNION: fields */
  uint64_t hash;           /* structural hash, stable across builds */
  const char *name;        /* "int", "struct entry", "entry_t -> struct entry" */
  const struct mvedsua_type *target;  /* POINTER, ARRAY, ENUM */
  const struct mvedsua_field *fields; /* STRUCT, UNION */
};

enum mvedsua_entry_kind {
  MVEDSUA_ENTRY_GLOBAL = 0,       /* external global */
  MVEDSUA_ENTRY_STATIC = 1,       /* file-level static */
  MVEDSUA_ENTRY_LOCAL_STATIC = 2, /* function-local static */
  MVEDSUA_ENTRY_LOCAL = 3,        /* migrated local (addr is NULL) */
  MVEDSUA_ENTRY_FUNCTION = 4,
};

enum mvedsua_entry_flags {
  MVEDSUA_ENTRY_CONST = 1u << 0, /* read-only data: never written, not in the id */
  MVEDSUA_ENTRY_THREAD_LOCAL = 1u << 1,
};

struct mvedsua_entry {
  const char *key;
  void *addr;              /* the object or function; NULL for LOCAL */
  uint64_t size;           /* bytes */
  const struct mvedsua_type *type; /* NULL for functions */
  uint32_t kind;           /* enum mvedsua_entry_kind */
  uint32_t flags;          /* enum mvedsua_entry_flags */
  uint32_t annotations;    /* enum mvedsua_annotation */
  uint32_t line;           /* declaration line, for messages */
  const char *annot_arg;
};

struct mvedsua_module {
  uint32_t magic;          /* MVEDSUA_REGISTRY_MAGIC */
  uint32_t abi;            /* MVEDSUA_REGISTRY_ABI */
  const char *source;      /* the compile unit's file name */
  uint64_t hash;           /* hash of the module's non-const state entries */
  uint64_t n_entries;
  const struct mvedsua_entry *entries;
};

/* Called by the constructor the plugin adds to every instrumented module. */
void __mvedsua_rt_register_module(const struct mvedsua_module *module);
/* The runtime's update flag: non-zero when an update point must stop. */
extern volatile int __mvedsua_update_pending;
/* The out-of-line slow path of a lowered update point. */
void __mvedsua_rt_update_point_slow(const char *name);
/* A lowered MVEDSUA_MIGRATE_LOCAL: the local `addr` of entry `e` is live. */
void __mvedsua_rt_local_enter(const struct mvedsua_entry *e, void *addr);
/* ...and no longer live (inserted before every return of its function). */
void __mvedsua_rt_local_leave(const struct mvedsua_entry *e);

#ifdef __cplusplus
}
#endif

#endif /* MVEDSUA_REGISTRY_H */
