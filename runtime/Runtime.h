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

} // namespace mvedsua

#endif // MVEDSUA_RUNTIME_H
