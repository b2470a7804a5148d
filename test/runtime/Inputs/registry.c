/* A version whose registry is built by hand, the way MvedsuaPass.so emits it,
 * so the runtime is tested independently of the plugin.
 *   -DREVERSED    the same state, modules' entries listed in reverse order
 *   -DCHANGED     the type hash of `counter` differs
 *   -DBAD_ABI     registry ABI 99
 *   -DBAD_MAGIC   registry magic wrong
 */
#include <errno.h>
#include <mvedsua.h>
#include <mvedsua/registry.h>
#include <stdio.h>
#include <string.h>

struct node {
  int value;
  struct node *next;
  unsigned flags : 3;
};
union slot {
  int i;
  int (*fn)(int, char *);
};
struct node *head;
int counter;
static union slot slots[2][3];
static char *names[4];
static const int limit = 3;

#ifdef CHANGED
#define COUNTER_HASH 0x1112
#else
#define COUNTER_HASH 0x1111
#endif

static const struct mvedsua_type t_int = {MVEDSUA_TYPE_INT, 0, 4, 0, 0x1111, "int", 0, 0};
static const struct mvedsua_type t_counter = {MVEDSUA_TYPE_INT, 0, 4, 0, COUNTER_HASH, "int", 0, 0};
static const struct mvedsua_type t_uint = {MVEDSUA_TYPE_UINT, 0, 4, 0, 0x2222, "unsigned int", 0, 0};
static const struct mvedsua_type t_char = {MVEDSUA_TYPE_INT, 0, 1, 0, 0x2323, "char", 0, 0};
static const struct mvedsua_type t_charp = {MVEDSUA_TYPE_POINTER, 0, 8, 0, 0x2424, "", &t_char, 0};
static const struct mvedsua_type t_names = {MVEDSUA_TYPE_ARRAY, 0, 32, 4, 0x2525, "", &t_charp, 0};
static const struct mvedsua_type t_node;
static const struct mvedsua_type t_node_ptr = {MVEDSUA_TYPE_POINTER, 0, 8, 0, 0x3333, "", &t_node, 0};
static const struct mvedsua_field node_fields[] = {
    {"value", 0, 32, &t_int, 0, 0, 0},
    {"next", 64, 64, &t_node_ptr, 0, 0, 0},
    {"flags", 128, 3, &t_uint, 0, 0, 0},
};
static const struct mvedsua_type t_node = {MVEDSUA_TYPE_STRUCT, 0, 24, 3, 0x4444, "node_t -> struct node", 0, node_fields};
static const struct mvedsua_type t_fn = {MVEDSUA_TYPE_FUNCTION, 0, 0, 0, 0x5555, "int (int, char *)", 0, 0};
static const struct mvedsua_type t_fnp = {MVEDSUA_TYPE_POINTER, 0, 8, 0, 0x5656, "", &t_fn, 0};
static const struct mvedsua_field slot_fields[] = {
    {"i", 0, 32, &t_int, 0, 0, 0},
    {"fn", 0, 64, &t_fnp, MVEDSUA_ANNOT_OPAQUE, 0, 0},
};
static const struct mvedsua_type t_slot = {MVEDSUA_TYPE_UNION, MVEDSUA_TYPE_ANONYMOUS, 8, 2, 0x6666, "", 0, slot_fields};
static const struct mvedsua_type t_slot3 = {MVEDSUA_TYPE_ARRAY, 0, 24, 3, 0x6767, "", &t_slot, 0};
static const struct mvedsua_type t_slots = {MVEDSUA_TYPE_ARRAY, 0, 48, 2, 0x6868, "", &t_slot3, 0};

int main(int argc, char **argv);

#define E(key, addr, size, type, kind, flags, annot, line, arg)                \
  {key, (void *)(addr), size, type, kind, flags, annot, line, arg}
static const struct mvedsua_entry entries[] = {
#ifndef REVERSED
    E("head", &head, 8, &t_node_ptr, MVEDSUA_ENTRY_GLOBAL, 0, 0, 22, 0),
    E("counter", &counter, 4, &t_counter, MVEDSUA_ENTRY_GLOBAL, 0, MVEDSUA_ANNOT_NO_MIGRATE, 23, 0),
    E("registry.c/slots", slots, 48, &t_slots, MVEDSUA_ENTRY_STATIC, 0, 0, 24, 0),
    E("registry.c/names", names, 32, &t_names, MVEDSUA_ENTRY_STATIC, MVEDSUA_ENTRY_THREAD_LOCAL, MVEDSUA_ANNOT_PTRARRAY, 25, "4"),
    E("registry.c/limit", &limit, 4, &t_int, MVEDSUA_ENTRY_STATIC, MVEDSUA_ENTRY_CONST, 0, 26, 0),
    E("registry.c/main#calls", 0, 4, &t_int, MVEDSUA_ENTRY_LOCAL_STATIC, 0, 0, 90, 0),
    E("registry.c/main#n", 0, 4, &t_int, MVEDSUA_ENTRY_LOCAL, 0, 0, 91, 0),
    E("main", main, 0, 0, MVEDSUA_ENTRY_FUNCTION, 0, 0, 88, 0),
#else
    E("main", main, 0, 0, MVEDSUA_ENTRY_FUNCTION, 0, 0, 88, 0),
    E("registry.c/main#n", 0, 4, &t_int, MVEDSUA_ENTRY_LOCAL, 0, 0, 91, 0),
    E("registry.c/main#calls", 0, 4, &t_int, MVEDSUA_ENTRY_LOCAL_STATIC, 0, 0, 90, 0),
    E("registry.c/limit", &limit, 4, &t_int, MVEDSUA_ENTRY_STATIC, MVEDSUA_ENTRY_CONST, 0, 26, 0),
    E("registry.c/names", names, 32, &t_names, MVEDSUA_ENTRY_STATIC, MVEDSUA_ENTRY_THREAD_LOCAL, MVEDSUA_ANNOT_PTRARRAY, 25, "4"),
    E("registry.c/slots", slots, 48, &t_slots, MVEDSUA_ENTRY_STATIC, 0, 0, 24, 0),
    E("counter", &counter, 4, &t_counter, MVEDSUA_ENTRY_GLOBAL, 0, MVEDSUA_ANNOT_NO_MIGRATE, 23, 0),
    E("head", &head, 8, &t_node_ptr, MVEDSUA_ENTRY_GLOBAL, 0, 0, 22, 0),
#endif
};

#ifdef BAD_MAGIC
#define MAGIC 0x12345678u
#else
#define MAGIC MVEDSUA_REGISTRY_MAGIC
#endif
#ifdef BAD_ABI
#define ABI 99u
#else
#define ABI MVEDSUA_REGISTRY_ABI
#endif
static const struct mvedsua_module module = {
    MAGIC, ABI, "registry.c", 0, sizeof entries / sizeof *entries, entries};

__attribute__((constructor)) static void register_registry(void) {
  __mvedsua_rt_register_module(&module);
}

int main(int argc, char **argv) {
  static int calls;
  int n = argc;
  __mvedsua_rt_local_enter(&entries[6], &n);
  mvedsua_update_point("main");
  for (int i = 0; i < argc; ++i)
    printf("argv[%d]=%s\n", i, argv[i]);
  printf("is_updating=%d from_main=%d\n", mvedsua_is_updating(),
         mvedsua_is_updating_from("main"));
  errno = 0;
  int r = mvedsua_request_update("./next.so");
  printf("request_update=%d %s\n", r, strerror(errno));
  calls++;
  __mvedsua_rt_local_leave(&entries[6]);
  return argc > 1 ? (int)strlen(argv[argc - 1]) : 0;
}
