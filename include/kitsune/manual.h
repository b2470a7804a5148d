/*
 * kitsune/manual.h: Kitsune's macros for hand-written transformers (included
 * by kitsune.h).
 *
 * A hand-written transformer is named with one of the *_XFORM macros and has
 * Kitsune's signature: it receives the NEW version's variable, reads the old
 * one with GET_OLD_*, and returns true on success:
 *
 *   int GLOBAL_XFORM(counter)(void *out) {
 *     long *old = GET_OLD_GLOBAL(counter);
 *     *(long long *)out = *old + 5;
 *     return 1;
 *   }
 *
 * The macro also registers the function with the runtime (a constructor), so
 * the update runs it in place of copying that variable: the variable's type
 * may change without an mvedsua-xfgen transformer. It runs during the update,
 * before the new version's main, under the contract of mvedsua/xform.h:
 * write only the new variable, read the old version, call no code of either
 * version. Returning 0 fails the update, and the old version runs on.
 *
 *   GLOBAL_XFORM(name)                    a global
 *   STATIC_XFORM(file, name)              a static of file.c: file is main_c
 *   LOCAL_STATIC_XFORM(file, func, name)  a function's static
 *   LOCAL_XFORM(func, name)               a migrated local (MIGRATE_LOCAL),
 *                                         run once per saved frame
 */
#ifndef KITSUNE_MANUAL_H
#define KITSUNE_MANUAL_H

#ifdef __cplusplus
extern "C" {
#endif

void *kitsune_get_symbol_addr_old(const char *name, const char *funcname,
                                  const char *filename, const char *ns);
void *kitsune_get_symbol_addr_new(const char *name, const char *funcname,
                                  const char *filename, const char *ns);

/* Registers `fn` as the transformer of the variable (file: Kitsune's mangled
 * file name or NULL; func: the function or NULL). In libmvedsua. */
void __kitsune_rt_register_xform(const char *file, const char *func,
                                 const char *name, int (*fn)(void *));

#define KITSUNE_PASTE_(a, b) a##b
#define KITSUNE_PASTE(a, b) KITSUNE_PASTE_(a, b)
/* Names start with __mvedsua_xf_ so the plugin never registers them as
 * program state. */
#define KITSUNE_XF_NAME_(tag) KITSUNE_PASTE(__mvedsua_xf_kitsune_, tag)

/* Expands to: a declaration of the function, the constructor that registers
 * it, and the function's name again, so that `int GLOBAL_XFORM(x)(void *p)
 * { ... }` defines it. */
#define KITSUNE_XFORM_(tag, file, func, name)                                  \
  KITSUNE_XF_NAME_(tag)(void *);                                               \
  __attribute__((constructor)) static void KITSUNE_PASTE(                      \
      __mvedsua_xf_kitsune_register_, tag)(void) {                             \
    __kitsune_rt_register_xform(file, func, name, KITSUNE_XF_NAME_(tag));      \
  }                                                                            \
  int KITSUNE_XF_NAME_(tag)

#define GLOBAL_XFORM(name) KITSUNE_XFORM_(g_##name, 0, 0, #name)
#define STATIC_XFORM(filename, name)                                           \
  KITSUNE_XFORM_(s_##filename##___file___##name, #filename, 0, #name)
#define LOCAL_STATIC_XFORM(filename, func, name)                               \
  KITSUNE_XFORM_(ls_##filename##___file___##func##___func___##name,            \
                 #filename, #func, #name)
#define LOCAL_XFORM(func, name)                                                \
  KITSUNE_XFORM_(l_##func##___func___##name, 0, #func, #name)

/* The old / new version's variable (a local: the saved frame's copy that a
 * LOCAL_XFORM is transforming, or the outermost one). */
#define GET_OLD_GLOBAL(name) kitsune_get_symbol_addr_old(#name, 0, 0, 0)
#define GET_OLD_STATIC(filename, name)                                         \
  kitsune_get_symbol_addr_old(#name, 0, #filename, 0)
#define GET_OLD_LOCAL_STATIC(filename, funcname, name)                         \
  kitsune_get_symbol_addr_old(#name, #funcname, #filename, 0)
#define GET_OLD_LOCAL(funcname, name)                                          \
  kitsune_get_symbol_addr_old(#name, #funcname, 0, 0)
#define GET_NEW_GLOBAL(name) kitsune_get_symbol_addr_new(#name, 0, 0, 0)
#define GET_NEW_STATIC(filename, name)                                         \
  kitsune_get_symbol_addr_new(#name, 0, #filename, 0)
#define GET_NEW_LOCAL_STATIC(filename, funcname, name)                         \
  kitsune_get_symbol_addr_new(#name, #funcname, #filename, 0)
#define GET_NEW_LOCAL(funcname, name)                                          \
  kitsune_get_symbol_addr_new(#name, #funcname, 0, 0)

/* DEF_XFORM_FUNC_PTR(name, f1, f2, ...) defines `void *name(void *fn)`,
 * which maps a pointer to one of the listed functions of the version updated
 * from to the same function of this (the new) version: fi when fn is the old
 * fi, fn itself when it is none of them (NULL stays NULL). A static fi is
 * looked up in the old version's file of the same name as this one. For a
 * pointer the update cannot see (one stored as an integer, or in an opaque
 * object); precede the macro with `static` for a static function. */
void *__kitsune_rt_xform_func_ptr(void *old_fn, const char *file,
                                  const char *names, void *const *new_fns,
                                  unsigned long n);
#define DEF_XFORM_FUNC_PTR(def_name, ...)                                      \
  void *def_name(void *__kt_old_fn) {                                          \
    void *const __kt_new_fns[] = {__VA_ARGS__};                                \
    return __kitsune_rt_xform_func_ptr(                                        \
        __kt_old_fn, __FILE__, #__VA_ARGS__, __kt_new_fns,                     \
        sizeof __kt_new_fns / sizeof __kt_new_fns[0]);                         \
  }

#ifdef __cplusplus
}
#endif

#endif /* KITSUNE_MANUAL_H */
