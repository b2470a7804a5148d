// Runtime.h: declarations shared by the files of libmvedsua (not installed).
//
// The runtime follows the shape of compiler-rt's small runtimes: plain C entry
// points, fixed-capacity tables in .bss, no allocation or locking on the
// update-point fast path or in signal handlers.
#ifndef MVEDSUA_RUNTIME_H
#define MVEDSUA_RUNTIME_H

#include "mvedsua/registry.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MVEDSUA_EXPORT extern "C" __attribute__((visibility("default")))

struct mvedsua_rt_loaded;        // ToolApi.h
struct mvedsua_rt_update_status; // ToolApi.h
struct mvedsua_rt_mve_options;   // ToolApi.h
struct mvedsua_rt_mve_status;    // ToolApi.h

namespace mvedsua {

// A version is every registered module that lives in one loaded object.
constexpr int kMaxVersions = 64;
constexpr int kMaxModules = 4096;
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxError = 512;

struct Version {
  char path[kMaxPath];      // dli_fname of the object (link_map l_name)
  const void *base;         // dli_fbase: distinguishes reloads of one path
  int n_modules;
  char error[kMaxError];    // first registration error, "" when valid
};

// Registry.cpp
int VersionCount();
const Version *GetVersion(int v);
int ModuleCount();
const struct mvedsua_module *GetModule(int m);
int ModuleVersion(int m);
int FindVersionByPath(const char *path);

// VersionId.cpp
uint64_t ComputeVersionId(int v);
void SortEntries(const struct mvedsua_entry **list, size_t n); // (kind, key)
void FormatVersionId(uint64_t id, char out[17]);

// StateDump.cpp
void DumpVersionText(int v, FILE *out);
void DumpVersionJson(int v, FILE *out);

// Loader.cpp: dlopens `open_path` (the object named `path` in messages).
int LoadVersionAt(const char *path, const char *open_path,
                  struct mvedsua_rt_loaded *out, char *err, size_t err_size);

// Startup.cpp: the runtime's life cycle, one stage at a time.
enum Stage {
  kStageUninitialized = 0, // before libmvedsua's constructor
  kStageInitialized,       // constructor ran: tables ready, modules register
  kStageLoading,           // a tool is loading a version (it reports errors)
  kStageRunning,           // the version's main is running
};
Stage GetStage();
void SetStage(Stage s);
void EnsureInitialized();

// SupervisorChannel.cpp
int SupervisorFd(); // -1 when the program runs without a supervisor
void AnnounceVersion(int v, const char *loaded_path);

// Report.cpp: one-line messages on stderr, async-signal-safe (no stdio).
void Report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Locals.cpp: the calling thread's migrated locals, for an update to save.
struct LocalView {
  const struct mvedsua_entry *entry; // null for a noted (plugin-less) local
  const char *name;
  void *addr;
  unsigned long size;
};
int LiveLocalCount();      // plugin locals of the live frames, outermost first
LocalView LiveLocalAt(int i);
int NotedLocalCount();     // MVEDSUA_MIGRATE_LOCAL without the plugin
LocalView NotedLocalAt(int i);
void ForgetLocals();       // the frames are gone (control left them)

// InPlaceUpdate.cpp: whole-program updates in the calling process.
enum UpdateSource { kUpdateFromProgram = 0, kUpdateFromSupervisor = 1 };
// Records a request for the update point to perform; 0, or -1 with errno
// (EINVAL, ENOTCONN: no mvedsua_rt_run_main driver, EBUSY, ENOENT).
int RequestUpdate(const char *path, int source);
// The same with a mode: in place, or multi-version (runtime/mve/Follower.h:
// the update point forks and the child applies the update).
enum UpdateMode { kUpdateInPlace = 0, kUpdateMultiVersion = 1 };
int RequestUpdateMode(const char *path, int source, int mode);
// The slow path of every update point.
void HandleUpdatePoint(const char *name);
int IsUpdating();
const char *UpdatingFrom(); // null when not updating
// Runs v's main, then the main of every version an update migrates to.
int RunVersions(int version, int (*main)(int, char **, char **), int argc,
                char **argv);
int CurrentVersion();
// The version the running one was updated from, or -1 before any update.
int PreviousVersion();
// The path a version was requested as (a private copy's file is
// /proc/self/fd/N); for messages and the supervisor's status.
const char *VersionDisplayPath(int v);

// Called once per request taken, when the update finished or failed, in the
// process that performed it: the supervisor channel's way to learn outcomes
// (see docs/updates.md). Null by default; the outcome is always Report()ed.
typedef void (*UpdateResultHook)(const struct mvedsua_rt_update_status *status);
void SetUpdateResultHook(UpdateResultHook hook);
// Called at an update point of the driver thread, before it looks for a
// pending request: the supervisor channel reads a request it was woken for
// there (outside any signal handler) and passes it to RequestUpdate with
// kUpdateFromSupervisor. Null by default.
typedef void (*UpdatePollHook)(void);
void SetUpdatePollHook(UpdatePollHook hook);
// How long a taken update may run before its new version reaches its update
// point: past it, the next update point (of any name) ends the update as
// failed, the new version running on. $MVEDSUA_UPDATE_TIMEOUT_MS, default
// 30000, 0 for no limit; the supervisor may set a request's own.
void SetUpdateTimeout(uint64_t ms);
// The channel's wire format of an outcome, without a newline:
//   update-done FROM_ID TO_ID PAUSE_US ENTRIES BYTES REMAPPED PATH
//   update-failed REASON
void FormatUpdateMessage(const struct mvedsua_rt_update_status *status,
                         char *buf, size_t size);

// UpdatePoint.cpp: runs the mvedsua_on_abort callbacks (the leader of a
// multi-version update, which stays on the old version).
void RunAbortCallbacks();

// runtime/mve/Follower.cpp: a multi-version request (options may be null:
// defaults); EBUSY while a follower exists or in a follower.
int RequestMultiVersionUpdate(const char *path,
                              const struct mvedsua_rt_mve_options *options,
                              int source);
// Called in the leader at each change of a multi-version update's stage or
// outcome (forked, catching-up, outdated-leader, rolled-back, the end), at
// an update point or at exit, never while recording: its calls are the
// runtime's own. The supervisor channel's way to follow the update. Null by
// default.
// InPlaceUpdate.cpp: "hello" for the version this process runs now (a
// follower that came to lead announces itself).
void AnnounceCurrentVersion();
// SupervisorChannel.cpp: the channel's hooks again, in a process that left
// it (a follower) and now leads (its descriptor is back in place).
void RejoinSupervisorChannel();
typedef void (*MveStageHook)(const struct mvedsua_rt_mve_status *status);
void SetMveStageHook(MveStageHook hook);

} // namespace mvedsua

#endif // MVEDSUA_RUNTIME_H
