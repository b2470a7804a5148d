/*
 * ToolApi.h: what mvedsua's own tools (mvedsua-run) call in libmvedsua.
 * Not installed and not for programs: programs use <mvedsua.h>.
 */
#ifndef MVEDSUA_RUNTIME_TOOL_API_H
#define MVEDSUA_RUNTIME_TOOL_API_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*mvedsua_rt_main_fn)(int, char **, char **);

/* A version loaded with mvedsua_rt_load_version. */
struct mvedsua_rt_loaded {
  void *handle;            /* from dlopen */
  mvedsua_rt_main_fn main; /* the object's own main */
  int version;             /* its registry, or -1 when it registered none */
};

/* Loads the shared object `path` (RTLD_NOW | RTLD_LOCAL) and finds its main
 * and registry. Returns 0, or -1 with a one-line message naming `path` in
 * `err`. */
int mvedsua_rt_load_version(const char *path, struct mvedsua_rt_loaded *out,
                            char *err, size_t err_size);

/* Runs the loaded version's main; the runtime now counts it as running. */
int mvedsua_rt_run_main(const struct mvedsua_rt_loaded *v, int argc,
                        char **argv);

/* The signal the supervisor sends the program to make it stop at its next
 * update point (it sets __mvedsua_update_pending). */
#define MVEDSUA_WAKE_SIGNAL (SIGRTMIN + 6)

/* In the program's process, before loading: `fd` is the program's end of the
 * channel to the supervisor; installs the handler of MVEDSUA_WAKE_SIGNAL.
 * mvedsua_rt_run_main then announces the version on it. 0, or -1 (errno). */
int mvedsua_rt_attach_supervisor(int fd);

/* The version's id (see docs/runtime.md) as 16 hex digits and 0 terminator. */
void mvedsua_rt_version_id(int version, char out[17]);

/* The version's registry as text or JSON. */
void mvedsua_rt_dump_state(int version, FILE *out, int json);

#ifdef __cplusplus
}
#endif

#endif /* MVEDSUA_RUNTIME_TOOL_API_H */
